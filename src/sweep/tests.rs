use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::discover::{clusters_of, judge};
use super::shard::fnv1a;
use super::*;
use crate::actions::Pattern;
use crate::plan::sweep::{parse_template, Part};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn stack(name: &str, hours_old: i64, tags: &[(&str, &str)]) -> StackFacts {
    StackFacts {
        name: name.into(),
        id: format!("arn:aws:cloudformation:us-west-2:123456789012:stack/{name}/1"),
        status: "CREATE_COMPLETE".into(),
        created: Some(now() - chrono::Duration::hours(hours_old)),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..StackFacts::default()
    }
}

fn find() -> Find {
    Find {
        stack: Some(Pattern::parse("Lab-*").unwrap()),
        tags: vec![("Workshop".into(), Pattern::parse("secrets").unwrap())],
        older_than: Some(Duration::from_secs(24 * 3600)),
        not_updated_for: Some(Duration::from_secs(6 * 3600)),
        ..Find::default()
    }
}

fn judged(s: &StackFacts) -> Option<(String, Vec<String>)> {
    judge(&find(), s, "teardown:protect", &["Lab-kept".into()], now())
}

#[test]
fn a_stale_lab_matches_with_the_reasons() {
    let (why, kept) = judged(&stack("Lab-a", 30, &[("Workshop", "secrets")])).unwrap();
    assert_eq!(
        why,
        "name matches \"Lab-*\", tag Workshop=secrets, created 30h ago"
    );
    assert!(kept.is_empty(), "{kept:?}");
}

#[test]
fn other_stacks_are_not_labs() {
    assert!(judged(&stack("Other", 30, &[("Workshop", "secrets")])).is_none());
    assert!(judged(&stack("Lab-a", 30, &[("Workshop", "other")])).is_none());
    assert!(judged(&stack("Lab-a", 30, &[])).is_none());
    let mut deleted = stack("Lab-a", 30, &[("Workshop", "secrets")]);
    deleted.status = "DELETE_COMPLETE".into();
    assert!(judged(&deleted).is_none());
}

#[test]
fn labs_are_kept_with_every_reason() {
    let kept = |s: &StackFacts| judged(s).unwrap().1.join("; ");
    assert_eq!(
        kept(&stack("Lab-a", 3, &[("Workshop", "secrets")])),
        "too young: created 3h ago (older_than 24h); recently updated: 3h ago (not_updated_for 6h)"
    );
    let mut updated = stack("Lab-a", 30, &[("Workshop", "secrets")]);
    updated.last_updated = Some(now() - chrono::Duration::hours(2));
    assert_eq!(
        kept(&updated),
        "recently updated: 2h ago (not_updated_for 6h)"
    );
    updated.last_updated = Some(now() - chrono::Duration::hours(7));
    assert_eq!(kept(&updated), "");
    assert_eq!(
        kept(&stack(
            "Lab-p",
            30,
            &[("Workshop", "secrets"), ("teardown:protect", "")]
        )),
        "protected: tagged teardown:protect"
    );
    assert_eq!(
        kept(&stack("Lab-kept", 30, &[("Workshop", "secrets")])),
        "protected: listed in the plan's keep list"
    );
    let mut busy = stack("Lab-a", 30, &[("Workshop", "secrets")]);
    busy.status = "UPDATE_IN_PROGRESS".into();
    busy.parent = Some("arn:parent".into());
    assert_eq!(
        kept(&busy),
        "nested stack of arn:parent: goes with its parent, never on its own; busy: UPDATE_IN_PROGRESS (the next sweep looks again)"
    );
    let mut unknown = stack("Lab-a", 30, &[("Workshop", "secrets")]);
    unknown.created = None;
    assert!(
        kept(&unknown).starts_with("age unknown"),
        "{}",
        kept(&unknown)
    );
}

fn sweep_plan(sweep: &str) -> Result<SweepPlan, String> {
    let text = format!(
        "name = \"p\"\n[vars]\nmain_stack = \"x\"\ncluster = \"c\"\n\n{sweep}\n\n\
         [steps.stop]\naction = \"ecs.stop-tasks\"\nmatch = {{ cluster = \"{{cluster}}\" }}\n\n\
         [steps.stack]\naction = \"cloudformation.delete-stack\"\nmatch = {{ name = \"{{main_stack}}\" }}\nafter = [\"stop\"]\n"
    );
    SweepPlan::parse(Path::new("p.toml"), &text, &[]).map_err(|e| e.to_string())
}

#[test]
fn a_sweep_section_is_read() {
    let plan = sweep_plan(
        "[sweep]\nfind = { stack = \"Lab-*\", tags = { Workshop = \"s*\" }, older_than = \"24h\", not_updated_for = \"0s\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.Cluster}-{region}\" }",
    )
    .unwrap();
    assert_eq!(plan.find.older_than, Some(Duration::from_secs(86400)));
    assert_eq!(plan.find.not_updated_for, Some(Duration::ZERO));
    let facts = stack("Lab-a", 30, &[("Cluster", "cl-a")]);
    let vars = plan.bind(&facts, "us-west-2", "123").unwrap();
    assert_eq!(vars["main_stack"], "Lab-a");
    assert_eq!(vars["cluster"], "cl-a-us-west-2");
    let lab_plan = plan.for_lab(&vars).unwrap();
    assert_eq!(
        clusters_of(&lab_plan),
        BTreeSet::from(["cl-a-us-west-2".to_string()])
    );
}

#[test]
fn binding_refuses_what_the_stack_cannot_give_or_could_widen() {
    let plan = sweep_plan(
        "[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.Cluster}\" }",
    )
    .unwrap();
    let err = |tags: &[(&str, &str)]| plan.bind(&stack("Lab-a", 30, tags), "r", "a").unwrap_err();
    assert_eq!(
        err(&[]),
        "cannot bind `cluster`: the stack has no tag `Cluster`"
    );
    assert_eq!(
        err(&[("Cluster", "")]),
        "cannot bind `cluster`: the stack's tag `Cluster` is empty"
    );
    assert!(err(&[("Cluster", "*")]).contains("glob characters"));
}

#[test]
fn bad_sweep_sections_are_located_and_explained() {
    let err = |sweep: &str| match sweep_plan(sweep) {
        Ok(_) => panic!("accepted: {sweep}"),
        Err(e) => e,
    };
    let e = err("");
    assert!(e.contains("no [sweep] section"), "{e}");
    let e = err("[sweep]\nfind = { stack = \"Lab-*\", older = \"1h\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.C}\" }");
    assert!(e.contains("unknown key `older` in `find`"), "{e}");
    assert!(e.contains("p.toml:7:27"), "{e}");
    let e = err("[sweep]\nfind = { stack = \"Lab-*\", older_than = \"yesterday\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.C}\" }");
    assert!(e.contains("bad duration \"yesterday\""), "{e}");
    let e = err("[sweep]\nfind = { older_than = \"1h\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.C}\" }");
    assert!(e.contains("needs `stack`, `description` or `tags`"), "{e}");
    let e = err("[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stak = \"{stack.name}\", cluster = \"{stack.tag.C}\" }");
    assert!(e.contains("`main_stak` is not a variable"), "{e}");
    assert!(e.contains("did you mean `main_stack`"), "{e}");
    let e = err("[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stack = \"{stack.nam}\", cluster = \"{stack.tag.C}\" }");
    assert!(e.contains("unknown placeholder `{stack.nam}`"), "{e}");
    let e = err("[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{region}\" }");
    assert!(e.contains("the same for every lab"), "{e}");
    // `stop` matches {cluster}, which is not bound: every lab's copy would stop the same tasks.
    let e = err("[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stack = \"{stack.name}\" }");
    assert!(
        e.contains("step `stop` would match the same resources in every lab"),
        "{e}"
    );
    let e = err("[sweep]\nfind = { stack = \"Lab-*\" }\nbind = { main_stack = \"{stack.name}\", cluster = \"{stack.tag.C}\" }\nschedule = \"daily\"");
    assert!(e.contains("unknown key `schedule` in [sweep]"), "{e}");
}

#[test]
fn shards_are_stable_and_partition() {
    // FNV-1a's published test vector: the hash must never change between releases.
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    let two = [Shard::parse("1/2").unwrap(), Shard::parse("2/2").unwrap()];
    for i in 0..50 {
        let lab = format!("Lab-{i}");
        let homes = two
            .iter()
            .filter(|s| s.contains("123456789012", "us-west-2", &lab))
            .count();
        assert_eq!(homes, 1, "{lab}");
    }
    assert!(Shard::parse("0/2").is_err());
    assert!(Shard::parse("3/2").is_err());
    assert!(Shard::parse("x").is_err());
}

#[test]
fn variables_and_templates_read_braces_like_plans() {
    assert_eq!(
        parse_template("x{{{stack.tag.K}}}").unwrap(),
        vec![
            Part::Text("x{".into()),
            Part::Tag("K".into()),
            Part::Text("}".into())
        ]
    );
    assert!(parse_template("{stack.tag.}").is_err());
    assert!(parse_template("a}").is_err());
}
