//! The `areo` binary as a user runs it: tables, `--json`, exit codes and messages.

#[path = "support/replies.rs"]
mod replies;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn areo(workspace: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_areo"))
        .arg("--workspace")
        .arg(workspace)
        .args(args)
        .env_remove("AREO_HOME")
        .output()
        .expect("run areo")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    assert!(output.status.success(), "areo failed: {}", stderr(output));
    serde_json::from_slice(&output.stdout).expect("valid JSON on stdout")
}

#[test]
fn import_list_show_stats_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let page = dir.path().join("page.json");
    std::fs::write(&page, replies::reply(0, 9, 4, "2026-01-01T00:00:00.000")).unwrap();

    let imported = json(&areo(
        &ws,
        &["--json", "catalog", "import", page.to_str().unwrap()],
    ));
    assert_eq!(imported["imported"][0]["inserted"], 9);
    assert_eq!(imported["imported"][0]["count"], 9);
    assert_eq!(imported["failed"], Value::Array(vec![]));

    let listed = json(&areo(
        &ws,
        &["--json", "catalog", "list", "--instrument", "ctx"],
    ));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed
        .iter()
        .all(|p| p["instrument"] == "CTX" && p["state"] == "remote"));
    assert!(
        listed[0]["observation_time"]
            .as_str()
            .unwrap()
            .contains('T'),
        "times as text"
    );

    let limited = areo(&ws, &["catalog", "list", "--limit", "2"]);
    let text = stdout(&limited);
    assert!(text.starts_with("PDSID"), "{text}");
    assert_eq!(
        text.lines().count(),
        4,
        "header, two rows, the note: {text}"
    );
    assert!(text.contains("(first 2 shown; --limit N for more, --limit 0 for all)"));

    let first = listed[0]["pdsid"].as_str().unwrap();
    let shown = json(&areo(
        &ws,
        &["--json", "catalog", "show", &first.to_lowercase()],
    ));
    assert_eq!(shown["pdsid"], first);
    assert_eq!(shown["files"].as_array().unwrap().len(), 6);
    assert_eq!(shown["files"][0]["kind"], "image");
    let human = stdout(&areo(&ws, &["catalog", "show", first]));
    assert!(
        human.contains("PRODUCT DATA FILE") || human.contains(".IMG"),
        "{human}"
    );

    let stats = json(&areo(&ws, &["--json", "catalog", "stats"]));
    assert_eq!(stats["products"], 9);
    assert_eq!(stats["by_instrument"]["HIRISE"]["RDRV11"], 6);
    assert_eq!(stats["files"], 6 * 24 + 3 * 6);
    assert!(stats["catalog_bytes"].as_u64().unwrap() > 0);

    let check = areo(&ws, &["catalog", "check"]);
    assert!(check.status.success());
    assert_eq!(stdout(&check), "catalog is consistent\n");
}

#[test]
fn errors_say_what_was_wrong_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let good = dir.path().join("good.json");
    let bad = dir.path().join("bad.json");
    std::fs::write(&good, replies::reply(0, 2, 4, "2026-01-01T00:00:00.000")).unwrap();
    std::fs::write(&bad, "{\"ODEResults\": {\"Products\": ").unwrap();

    let mixed = areo(
        &ws,
        &[
            "catalog",
            "import",
            bad.to_str().unwrap(),
            good.to_str().unwrap(),
        ],
    );
    assert_eq!(mixed.status.code(), Some(1));
    assert!(
        stderr(&mixed).contains("bad.json: malformed JSON at line 1"),
        "{}",
        stderr(&mixed)
    );
    assert!(
        stdout(&mixed).contains("good.json: 2 product(s): 2 new"),
        "{}",
        stdout(&mixed)
    );

    let missing = areo(&ws, &["catalog", "show", "NO_SUCH_PRODUCT"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        stderr(&missing),
        "error: no product NO_SUCH_PRODUCT in the catalog\n"
    );

    let bad_box = areo(&ws, &["catalog", "list", "--bbox", "10,20,30"]);
    assert!(!bad_box.status.success());
    assert!(
        stderr(&bad_box).contains("expected four numbers W,E,S,N"),
        "{}",
        stderr(&bad_box)
    );

    let bad_state = areo(&ws, &["catalog", "list", "--state", "lost"]);
    assert!(
        stderr(&bad_state).contains("unknown state \"lost\""),
        "{}",
        stderr(&bad_state)
    );

    let nowhere = dir.path().join("a-file");
    std::fs::write(&nowhere, "x").unwrap();
    let unwritable = areo(&nowhere.join("ws"), &["catalog", "stats"]);
    assert_eq!(unwritable.status.code(), Some(1));
    assert!(
        stderr(&unwritable).contains("cannot use"),
        "{}",
        stderr(&unwritable)
    );
}

#[test]
fn a_workspace_in_use_is_refused_with_the_owners_pid() {
    let dir = tempfile::tempdir().unwrap();
    let held = areo::workspace::Workspace::open(dir.path()).unwrap();
    let refused = areo(dir.path(), &["catalog", "stats"]);
    assert_eq!(refused.status.code(), Some(1));
    let expected = format!(
        "workspace {} is in use by another areo process (pid {})",
        dir.path().display(),
        std::process::id()
    );
    assert!(stderr(&refused).contains(&expected), "{}", stderr(&refused));
    drop(held);
    assert!(areo(dir.path(), &["catalog", "stats"]).status.success());
}

#[test]
fn the_workspace_comes_from_areo_home_when_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_areo"))
        .args(["--json", "catalog", "stats"])
        .env("AREO_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(json(&output)["products"], 0);
    assert!(dir.path().join("catalog").is_dir());
}

#[test]
fn the_demo_seeds_its_workspace_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let first = areo(dir.path(), &["demo"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let text = stdout(&first);
    assert!(text.contains("1 product(s): 1 new"), "{text}");
    assert!(
        text.contains("ESP_013951_1955_RED  HIRISE      RDRV11"),
        "{text}"
    );
    let again = json(&areo(dir.path(), &["--json", "demo"]));
    assert_eq!(again["import"]["unchanged"], 1);
    assert_eq!(again["products"][0]["map_scale"], 0.5);
}
