//! The `areo` binary as a user runs it: tables, `--json`, exit codes and messages.

#[path = "support/replies.rs"]
mod replies;

use serde_json::{json, Value};
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

/// The demo's model with a third of its epochs: the smaller setting that still learns.
fn short_demo_model() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/unet-tiny.toml"
    ))
    .unwrap();
    assert!(text.contains("epochs = 15"), "{text}");
    text.replace("epochs = 15", "epochs = 5")
        .replace("name = \"unet-tiny\"", "name = \"demo-small\"")
}

#[test]
fn the_headless_demo_runs_the_crater_pipeline_and_scores_above_chance() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let config = dir.path().join("small.toml");
    std::fs::write(&config, short_demo_model()).unwrap();
    let args = [
        "--json",
        "demo",
        "--headless",
        "--config",
        config.to_str().unwrap(),
    ];
    let first = json(&areo(&ws, &args));
    let states: Vec<&str> = first["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["succeeded"; 9], "{first}");
    let report = &first["evaluation"];
    assert_eq!(report["region"], json!([384, 160, 128, 160]));
    assert_eq!(report["pixel"]["scored"], 128 * 160);
    // The held-out craters: class 1 pixels of the truth mask in the test area.
    let crater = &report["pixel"]["per_class"][1];
    let support = crater["support"].as_f64().unwrap();
    assert!(support > 300.0, "{report}");
    // Guessing crater at random, at whatever rate, gets F1 at most 2p / (1 + p).
    let prevalence = support / (128.0 * 160.0);
    let chance = 2.0 * prevalence / (1.0 + prevalence);
    let f1 = crater["f1"].as_f64().unwrap();
    assert!(
        f1 > chance,
        "crater F1 {f1} is not above chance {chance}: {report}"
    );
    assert_eq!(
        report["craters"]["truth"], 4,
        "craters centred in the test area"
    );
    let kept: Value =
        serde_json::from_slice(&std::fs::read(ws.join("evals/demo.json")).unwrap()).unwrap();
    assert_eq!(&kept, report);
    let run = json(&areo(&ws, &["--json", "runs", "show", "demo-demo-small"]));
    assert_eq!(run["run"]["epochs_done"], 5, "{run}");

    // Again: the same pipeline runs; the finished run is kept, not trained again.
    let again = json(&areo(&ws, &args));
    assert_ne!(again["jobs"][0]["id"], first["jobs"][0]["id"]);
    assert_eq!(again["evaluation"]["pixel"], report["pixel"]);
    let run = json(&areo(&ws, &["--json", "runs", "show", "demo-demo-small"]));
    assert_eq!(run["run"]["epochs_done"], 5, "{run}");
    // A CPU run's epochs have no GPU memory column; a CUDA run's lines carry the reading.
    let shown = stdout(&areo(&ws, &["runs", "show", "demo-demo-small"]));
    assert!(!shown.contains("GPU memory"), "{shown}");
    let metrics = ws.join("runs/demo-demo-small/metrics.jsonl");
    let on_gpu: String = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|line| {
            let mut epoch: Value = serde_json::from_str(line).unwrap();
            let used = epoch["epoch"].as_u64().unwrap() << 29;
            epoch["gpu_memory"] = json!({"used": used, "total": 80u64 << 30});
            format!("{epoch}\n")
        })
        .collect();
    std::fs::write(&metrics, on_gpu).unwrap();
    let shown = stdout(&areo(&ws, &["runs", "show", "demo-demo-small"]));
    assert!(shown.contains("GPU memory"), "{shown}");
    assert!(
        shown.contains("0.5/80.0 GiB") && shown.contains("2.5/80.0 GiB"),
        "epochs 1 and 5 at 2^29 bytes an epoch: {shown}"
    );
    // The sample ODE product and the sample image, registered as a local product.
    let products = json(&areo(&ws, &["--json", "catalog", "list"]));
    let ids: Vec<&str> = products
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pdsid"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "ESP_013951_1955_RED",
            "NANEDI-512X320",
            "SELECTION3-384",
            "SELECTION5-384"
        ]
    );

    // The lineage: the report traces back through the prediction it scored and the run to
    // the dataset and the tile set.
    let lineage = |kind: &str| {
        json(&areo(
            &ws,
            &["--json", "catalog", "lineage", "--kind", kind],
        ))
    };
    let report = lineage("report");
    let inputs = report[0]["inputs"].as_array().unwrap();
    for made_by in [
        json!({"artifact": ["run", "demo-demo-small"]}),
        json!({"artifact": ["prediction", "runs/demo-demo-small/predictions/nanedi-512x320"]}),
    ] {
        assert!(inputs.contains(&made_by), "{made_by} not in {report}");
    }
    assert_eq!(
        lineage("run")[0]["inputs"],
        json!([{"artifact": ["dataset", "demo-craters"]}])
    );
    assert_eq!(
        lineage("dataset")[0]["inputs"],
        json!([{"artifact": ["tile-set", "tiles/demo-nanedi"]}])
    );

    // Inference on a catalog product by its id, recorded as made from it.
    let predicted = json(&areo(
        &ws,
        &[
            "--json",
            "infer",
            "--run",
            "demo-demo-small",
            "--product",
            "nanedi-512x320",
        ],
    ));
    assert_eq!(
        (&predicted["width"], &predicted["height"]),
        (&json!(512), &json!(320))
    );
    let shown = json(&areo(&ws, &["--json", "catalog", "show", "NANEDI-512X320"]));
    assert_eq!(
        shown["made"][0]["name"],
        "runs/demo-demo-small/predictions/NANEDI-512X320"
    );
    assert_eq!(
        shown["made"][0]["inputs"],
        json!([{"artifact": ["run", "demo-demo-small"]}, {"product": "NANEDI-512X320"}])
    );
    areo(&ws, &["stop"]);
}

#[test]
fn the_demo_refuses_a_bad_configuration_before_queueing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "name = \"x\"\n[model]\nencoder = \"vgg\"\n").unwrap();
    let output = areo(
        &dir.path().join("ws"),
        &["demo", "--headless", "--config", config.to_str().unwrap()],
    );
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(error.contains("bad.toml"), "{error}");
    assert!(
        !dir.path().join("ws/areo.sock").exists(),
        "no daemon was started"
    );
}

#[test]
fn local_images_become_complete_products_named_by_their_label() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/craters/nanedi-512x320.png"
    );
    let bytes = std::fs::read(sample).unwrap();

    // No label: the file name is the id.
    let added = json(&areo(&ws, &["--json", "catalog", "add-local", sample]));
    assert_eq!(added["added"][0]["pdsid"], "NANEDI-512X320");
    assert_eq!(added["added"][0]["outcome"], "inserted");
    assert_eq!(added["added"][0]["bytes"], bytes.len());
    let shown = json(&areo(&ws, &["--json", "catalog", "show", "NANEDI-512X320"]));
    let file = &shown["files"][0];
    assert_eq!(file["state"], "complete");
    assert_eq!(file["size"], bytes.len());
    let stored = ws.join("products/NANEDI-512X320/nanedi-512x320.png");
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    // Again: nothing changes.
    let again = json(&areo(&ws, &["--json", "catalog", "add-local", sample]));
    assert_eq!(again["added"][0]["outcome"], "unchanged");

    // A detached label names the product and places it on Mars.
    let label = dir.path().join("scene.lbl");
    std::fs::write(
        &label,
        "PDS_VERSION_ID = PDS3\r\nPRODUCT_ID = \"HRSC_NANEDI_CROP\"\r\nINSTRUMENT_HOST_ID = MEX\r\n\
         INSTRUMENT_ID = HRSC\r\nPRODUCT_TYPE = CROP\r\nTARGET_NAME = MARS\r\n\
         START_TIME = 2004-01-15T10:00:00.000\r\n\
         OBJECT = IMAGE_MAP_PROJECTION\r\n  MAP_PROJECTION_TYPE = EQUIRECTANGULAR\r\n\
         MAP_SCALE = 12.5 <METERS/PIXEL>\r\n  MAP_RESOLUTION = 4741.0 <PIX/DEG>\r\n\
         CENTER_LATITUDE = 0.0 <DEG>\r\n  CENTER_LONGITUDE = 0.0 <DEG>\r\n\
         LINE_PROJECTION_OFFSET = 0.0\r\n  SAMPLE_PROJECTION_OFFSET = 0.0\r\n\
         MINIMUM_LATITUDE = 4.9 <DEG>\r\n  MAXIMUM_LATITUDE = 5.0 <DEG>\r\n\
         WESTERNMOST_LONGITUDE = 311.9 <DEG>\r\n  EASTERNMOST_LONGITUDE = 312.0 <DEG>\r\n\
         END_OBJECT = IMAGE_MAP_PROJECTION\r\nEND\r\n",
    )
    .unwrap();
    let added = json(&areo(
        &ws,
        &[
            "--json",
            "catalog",
            "add-local",
            sample,
            "--label",
            label.to_str().unwrap(),
        ],
    ));
    assert_eq!(added["added"][0]["pdsid"], "HRSC_NANEDI_CROP");
    let shown = json(&areo(
        &ws,
        &["--json", "catalog", "show", "HRSC_NANEDI_CROP"],
    ));
    let product = &shown;
    assert_eq!(product["instrument"], "HRSC");
    assert_eq!(product["product_type"], "CROP");
    assert_eq!(product["map_scale"], 12.5);
    assert!((product["center_latitude"].as_f64().unwrap() - 4.95).abs() < 1e-9);
    assert!((product["center_longitude"].as_f64().unwrap() - 311.95).abs() < 1e-9);
    assert_eq!(
        shown["files"].as_array().unwrap().len(),
        2,
        "the image and its label"
    );
    // The catalog's spatial index finds it.
    let found = json(&areo(
        &ws,
        &["--json", "catalog", "list", "--bbox", "311,313,4,6"],
    ));
    assert_eq!(found.as_array().unwrap().len(), 1);

    // Bad input is refused and nothing is added.
    for (text, expected) in [
        ("PRODUCT_ID = \"a/b\"\r\nEND\r\n", "A/B"),
        ("PRODUCT_ID = (unclosed\r\n", "not a PDS3 label"),
    ] {
        std::fs::write(&label, text).unwrap();
        let output = areo(
            &ws,
            &[
                "catalog",
                "add-local",
                sample,
                "--label",
                label.to_str().unwrap(),
            ],
        );
        assert!(!output.status.success());
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    }
    let output = areo(&ws, &["catalog", "add-local", "/nowhere/image.png"]);
    assert!(
        stderr(&output).contains("/nowhere/image.png"),
        "{}",
        stderr(&output)
    );
    let listed = json(&areo(&ws, &["--json", "catalog", "list"]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    areo(&ws, &["stop"]);
}

/// `areo tile --product` cuts a catalog product in the daemon, with its label's projection,
/// and the tile set joins the lineage: listed by kind, by the product it came from, and in
/// `catalog show`.
#[test]
fn tiling_a_product_records_what_it_was_made_from() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/craters/nanedi-512x320.png"
    );
    let label = dir.path().join("scene.lbl");
    std::fs::write(
        &label,
        "PDS_VERSION_ID = PDS3\r\nPRODUCT_ID = \"HRSC_NANEDI_CROP\"\r\n\
         OBJECT = IMAGE_MAP_PROJECTION\r\n  MAP_PROJECTION_TYPE = EQUIRECTANGULAR\r\n\
         MAP_SCALE = 12.5 <METERS/PIXEL>\r\n  LINE_PROJECTION_OFFSET = 0.5\r\n\
         SAMPLE_PROJECTION_OFFSET = 0.5\r\nEND_OBJECT = IMAGE_MAP_PROJECTION\r\nEND\r\n",
    )
    .unwrap();
    let label = label.to_str().unwrap();
    json(&areo(
        &ws,
        &["--json", "catalog", "add-local", sample, "--label", label],
    ));

    let tiled = json(&areo(
        &ws,
        &[
            "--json",
            "tile",
            "--product",
            "hrsc_nanedi_crop",
            "--size",
            "128",
        ],
    ));
    assert_eq!(
        tiled["chips"], 12,
        "4 x 3 chips of 128 px (the last row shifted in)"
    );
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(ws.join("tiles/HRSC_NANEDI_CROP/manifest.json")).unwrap(),
    )
    .unwrap();
    // Chip (128, 0): west = (0.5 - 0.5 + 128) * 12.5 = 1600, from the product's label.
    assert_eq!(
        manifest["chips"][1]["ground"],
        json!([1600.0, 0.0, 3200.0, -1600.0])
    );

    let lineage = json(&areo(
        &ws,
        &["--json", "catalog", "lineage", "--kind", "tile-set"],
    ));
    let lineage = lineage.as_array().unwrap();
    assert_eq!(lineage.len(), 1);
    assert_eq!(lineage[0]["name"], "tiles/HRSC_NANEDI_CROP");
    assert_eq!(
        lineage[0]["inputs"],
        json!([{"product": "HRSC_NANEDI_CROP"}])
    );
    let summary: Value = serde_json::from_str(lineage[0]["summary"].as_str().unwrap()).unwrap();
    assert_eq!(summary["chips"], 12);
    let from_product = json(&areo(
        &ws,
        &[
            "--json",
            "catalog",
            "lineage",
            "--from-product",
            "HRSC_NANEDI_CROP",
        ],
    ));
    assert_eq!(from_product, Value::Array(lineage.to_vec()));
    let shown = json(&areo(
        &ws,
        &["--json", "catalog", "show", "HRSC_NANEDI_CROP"],
    ));
    assert_eq!(shown["made"][0]["name"], "tiles/HRSC_NANEDI_CROP");
    let table = stdout(&areo(&ws, &["catalog", "lineage"]));
    assert!(
        table.contains("tiles/HRSC_NANEDI_CROP") && table.contains("product HRSC_NANEDI_CROP"),
        "{table}"
    );
    let none = json(&areo(
        &ws,
        &[
            "--json",
            "catalog",
            "lineage",
            "--from-artifact",
            "run:nothing",
        ],
    ));
    assert_eq!(none, json!([]));
    let output = areo(&ws, &["catalog", "lineage", "--from-artifact", "model:x"]);
    assert!(
        stderr(&output).contains("\"model\" is not a kind of artefact"),
        "{}",
        stderr(&output)
    );

    let output = areo(&ws, &["tile", "--product", "NOPE"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no product NOPE"),
        "{}",
        stderr(&output)
    );
    areo(&ws, &["stop"]);
}

/// `pipeline --wait` returns once every step has ended or waits on one that failed (the
/// daemon keeps those queued for a retry), instead of waiting for them forever.
#[test]
fn a_waited_pipeline_with_a_failed_step_returns_and_says_what_still_waits() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let steps = dir.path().join("steps.json");
    let missing = dir.path().join("never-made");
    std::fs::write(
        &steps,
        json!({"steps": [
            {"name": "fails", "job": {"kind": "probe", "steps": 1, "step_ms": 1,
                                      "fail_unless": missing}},
            {"name": "after it", "after": ["fails"], "job": {"kind": "probe", "steps": 1, "step_ms": 1}},
            {"name": "after that", "after": ["after it"], "job": {"kind": "probe", "steps": 1, "step_ms": 1}},
            {"name": "alone", "job": {"kind": "probe", "steps": 2, "step_ms": 1}}
        ]})
        .to_string(),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_areo"))
        .arg("--workspace")
        .arg(&ws)
        .args(["pipeline", steps.to_str().unwrap(), "--wait"])
        .env_remove("AREO_HOME")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("pipeline --wait never returned");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let printed = stdout(&output);
    let lines: Vec<&str> = printed.lines().collect();
    assert!(lines[0].starts_with("fails: job 1 failed:"), "{printed}");
    assert!(lines[0].contains("never-made does not exist"), "{printed}");
    assert!(
        lines[1].starts_with("after it: job 2 is still queued after job 1"),
        "{printed}"
    );
    assert!(
        lines[2].starts_with("after that: job 3 is still queued after job 2"),
        "{printed}"
    );
    assert_eq!(
        lines[3], "alone: job 4 succeeded: probe 2 x 1 ms",
        "{printed}"
    );
    areo(&ws, &["stop"]);
}
