//! The deployment examples (Dockerfile, deploy/) and the release workflow
//! (.github/workflows/release.yml) pass their offline validation: `deploy/check.sh` lints the
//! Dockerfile, validates the GitHub workflows and the Kubernetes manifests against vendored JSON
//! schemas, lints the CloudFormation template with cfn-lint, checks that the task role's policy is
//! what `teardown permissions` prints, that the files agree with each other, and that the release
//! builds static musl and macOS binaries with checksums and pushes the image (`checks.py release`).
//!
//! The script installs its pinned validators from PyPI into a virtual environment the first time
//! (~1 minute; `$HOME/.cache/teardown/deploy-venv`, or `$TEARDOWN_DEPLOY_VENV`); after that no
//! check needs the network. It needs `bash` and `python3` with `venv`, as the moto tests do.

use std::path::Path;
use std::process::Command;

#[test]
fn deploy_examples_pass_offline_validation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("bash")
        .arg(root.join("deploy/check.sh"))
        .current_dir(root)
        // The binary this test run built: the script needs no second cargo build.
        .env("TEARDOWN_BIN", env!("CARGO_BIN_EXE_teardown"))
        .output()
        .expect("bash runs deploy/check.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "deploy/check.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("deploy checks:") && stdout.contains(" passed, 0 failed"),
        "deploy/check.sh did not report its summary:\n{stdout}\n{stderr}"
    );
}
