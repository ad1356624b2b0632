//! The tables of README.md and deploy/README.md render as tables: every row belongs to a table
//! that starts after a blank line with a header and its `|---|` line, and has as many cells as
//! its header. A row left below a paragraph (the exit-code table's `130` row once was) renders as
//! a line of text with pipes in it.

use std::path::Path;

/// The cells of a table row: split at each `|` that is not escaped (`\|` is a pipe inside a cell).
fn cells(row: &str) -> usize {
    let mut pipes: usize = 0;
    let mut escaped = false;
    for c in row.trim().chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => pipes += 1,
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    pipes.saturating_sub(1)
}

/// Every problem with the tables of `text`, as `line N: what`.
fn table_problems(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut problems = Vec::new();
    let mut in_code = false;
    let mut header_cells: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let is_row = !in_code && line.starts_with('|');
        if !is_row {
            header_cells = None;
            continue;
        }
        match header_cells {
            Some(n) => {
                if cells(line) != n {
                    problems.push(format!(
                        "line {}: {} cells, its table's header has {n}: {line}",
                        i + 1,
                        cells(line)
                    ));
                }
            }
            None => {
                let after_blank = i == 0 || lines[i - 1].trim().is_empty();
                let separator = lines
                    .get(i + 1)
                    .is_some_and(|l| l.starts_with('|') && l.chars().all(|c| "|-: ".contains(c)));
                if !after_blank || !separator {
                    problems.push(format!(
                        "line {}: a table row that starts no table (it needs a blank line before its header and a |---| line after it): {line}",
                        i + 1
                    ));
                }
                header_cells = Some(cells(line));
            }
        }
    }
    problems
}

#[test]
fn every_table_row_of_the_readmes_belongs_to_a_whole_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["README.md", "deploy/README.md"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let problems = table_problems(&text);
        assert!(problems.is_empty(), "{file}:\n{}", problems.join("\n"));
    }
}

#[test]
fn a_row_below_a_paragraph_is_found() {
    let broken =
        "| code | meaning |\n|---|---|\n| 0 | ok |\n\nSome words.\n| 130 | interrupted |\n";
    let problems = table_problems(broken);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("line 6:"), "{problems:?}");
    let short = "| a | b |\n|---|---|\n| only one |\n";
    assert_eq!(table_problems(short).len(), 1);
    // An escaped pipe is inside a cell.
    let escaped = "| a | b |\n|---|---|\n| `x \\| y` | z |\n";
    assert!(table_problems(escaped).is_empty());
}

/// The workshop plan's graph in the README is what `teardown graph` prints for the shipped plan:
/// it once showed a `delete-services` step the plan no longer had.
#[test]
fn the_readme_graph_is_the_shipped_plans() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("```mermaid\n")
        .expect("a mermaid block in README.md")
        + 11;
    let shown = &readme[start..start + readme[start..].find("```").unwrap()];
    let output = std::process::Command::new(crate::support::teardown_bin())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "graph",
            "plans/secrets-manager-fargate-workshop.toml",
            "--format",
            "mermaid",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        shown.trim(),
        String::from_utf8_lossy(&output.stdout).trim(),
        "README.md's graph differs from the shipped plan's: paste `teardown graph plans/secrets-manager-fargate-workshop.toml --format mermaid`"
    );
}
