//! The catalog through its library API: imports, updates, queries, and bad input that must
//! leave stored data untouched.

#[path = "support/replies.rs"]
mod replies;

use areo::catalog::{open_when_released, Catalog, CatalogStats, ProductQuery, ProductRow, Upsert};
use areo::geo::LonLatBox;
use areo::lineage::{Artifact, ArtifactKind, Input};
use areo::pipeline::import::{import_reply_files, ImportError, ImportReport};
use areo::product::FileState;
use areo::progress::Silent;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const DATE: &str = "2026-01-01T00:00:00.000";

struct Fixture {
    dir: tempfile::TempDir,
    catalog: Catalog,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog")).unwrap();
        Fixture { dir, catalog }
    }

    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn import(&self, path: &Path) -> Result<ImportReport, ImportError> {
        import_reply_files(&self.catalog, &[path.to_path_buf()], &Silent)
            .pop()
            .unwrap()
    }

    fn import_text(&self, name: &str, text: &str) -> Result<ImportReport, ImportError> {
        let path = self.write(name, text);
        self.import(&path)
    }

    /// Everything a user could see of the catalog.
    fn snapshot(
        &self,
    ) -> (
        CatalogStats,
        Vec<ProductRow>,
        Vec<Vec<areo::product::ProductFile>>,
    ) {
        let mut stats = self.catalog.stats().unwrap();
        stats.catalog_bytes = 0;
        let rows = self.catalog.query(&ProductQuery::default()).unwrap();
        let files = rows
            .iter()
            .map(|r| self.catalog.files(&r.product.pdsid).unwrap())
            .collect();
        (stats, rows, files)
    }
}

fn reply_with(products: Vec<Value>, date: &str) -> String {
    json!({"ODEResults": {
        "Products": {"Product": products},
        "QuerySummary": {"Date": date, "query": "PRODUCT"},
        "Status": "Success"
    }})
    .to_string()
}

#[test]
fn importing_the_same_reply_twice_changes_nothing() {
    let f = Fixture::new();
    let path = f.write("page.json", replies::reply(0, 30, 1, DATE));
    let first = f.import(&path).unwrap();
    assert_eq!((first.products, first.stored.inserted), (30, 30));
    let before = f.snapshot();
    let second = f.import(&path).unwrap();
    assert_eq!(
        (
            second.stored.inserted,
            second.stored.updated,
            second.stored.unchanged
        ),
        (0, 0, 30)
    );
    assert_eq!(f.snapshot(), before);
    assert_eq!(f.catalog.verify().unwrap(), Vec::<String>::new());
}

#[test]
fn a_newer_reply_updates_the_record_and_keeps_downloads() {
    let f = Fixture::new();
    let mut product = replies::product(0, 1);
    let pdsid = product["pdsid"].as_str().unwrap().to_string();
    f.import_text("old.json", &reply_with(vec![product.clone()], DATE))
        .unwrap();
    let files = f.catalog.files(&pdsid).unwrap();
    assert_eq!(files.len(), 24);
    let label = files
        .iter()
        .find(|f| f.name.ends_with("RED.LBL"))
        .unwrap()
        .name
        .clone();
    let quicklook = files
        .iter()
        .find(|f| f.name.ends_with("QLOOK.JP2"))
        .unwrap()
        .name
        .clone();
    f.catalog
        .update_file(&pdsid, &label, |file| {
            file.state = FileState::Complete;
            file.size = Some(8212);
            file.sha256 = Some("ab".repeat(32));
            file.local_path = Some(PathBuf::from("products/x/label.LBL"));
        })
        .unwrap();
    assert_eq!(
        f.catalog.product_state(&pdsid).unwrap(),
        FileState::Complete
    );

    // The newer reply changes a value and no longer lists the label or the quick-look.
    product["Comment"] = json!("Revised comment");
    let listed = product["Product_files"]["Product_file"]
        .as_array_mut()
        .unwrap();
    listed.retain(|f| f["FileName"] != json!(label) && f["FileName"] != json!(quicklook));
    let newer = reply_with(vec![product.clone()], "2026-06-01T00:00:00.000");
    let report = f.import_text("new.json", &newer).unwrap();
    assert_eq!(report.stored.updated, 1);

    let stored = f.catalog.product(&pdsid).unwrap().unwrap();
    assert_eq!(stored.comment.as_deref(), Some("Revised comment"));
    let files = f.catalog.files(&pdsid).unwrap();
    assert_eq!(
        files.len(),
        23,
        "the remote quick-look is gone, the downloaded label stays"
    );
    let kept = files.iter().find(|f| f.name == label).unwrap();
    assert_eq!((kept.state, kept.size), (FileState::Complete, Some(8212)));
    assert_eq!(f.catalog.stats().unwrap().bytes_on_disk, 8212);

    // The old reply again: older than what is stored, so ignored.
    let report = f
        .import_text(
            "old-again.json",
            &reply_with(vec![replies::product(0, 1)], DATE),
        )
        .unwrap();
    assert_eq!(report.stored.skipped_older, 1);
    let stored = f.catalog.product(&pdsid).unwrap().unwrap();
    assert_eq!(stored.comment.as_deref(), Some("Revised comment"));
    assert_eq!(f.catalog.verify().unwrap(), Vec::<String>::new());
}

#[test]
fn a_reply_without_files_leaves_the_files_alone() {
    let f = Fixture::new();
    let product = replies::product(2, 1);
    let pdsid = product["pdsid"].as_str().unwrap().to_string();
    f.import_text("full.json", &reply_with(vec![product.clone()], DATE))
        .unwrap();
    let mut bare = product;
    bare.as_object_mut().unwrap().remove("Product_files");
    bare["Comment"] = json!("metadata only");
    let report = f
        .import_text(
            "bare.json",
            &reply_with(vec![bare], "2026-02-01T00:00:00.000"),
        )
        .unwrap();
    assert_eq!(report.stored.updated, 1);
    assert_eq!(
        f.catalog.files(&pdsid).unwrap().len(),
        6,
        "a CTX EDR lists six files"
    );
}

#[test]
fn bad_replies_name_the_file_and_the_fault_and_change_nothing() {
    let f = Fixture::new();
    f.import_text("good.json", &replies::reply(0, 20, 1, DATE))
        .unwrap();
    let before = f.snapshot();

    let good = replies::reply(100, 5, 1, DATE);
    let mut wrong_type = replies::product(200, 1);
    wrong_type["Center_latitude"] = json!({"deg": 1});
    let wrong_type_message = format!(
        "product #2 ({}): field Center_latitude: expected a string, found an object",
        wrong_type["pdsid"].as_str().unwrap()
    );
    let mut bad_number = replies::product(201, 1);
    bad_number["Map_scale"] = json!("half a metre");
    let mut no_pdsid = replies::product(202, 1);
    no_pdsid.as_object_mut().unwrap().remove("pdsid");
    let mut hostile = replies::product(203, 1);
    hostile["pdsid"] = json!("../../etc/passwd");
    let mut hostile_file = replies::product(204, 1);
    hostile_file["Product_files"]["Product_file"][3]["FileName"] = json!("../evil.JP2");
    let mut out_of_range = replies::product(205, 1);
    out_of_range["Maximum_latitude"] = json!("95.5");
    let mut random = Vec::with_capacity(1 << 20);
    let mut stream = replies::Stream::new(9);
    while random.len() < 1 << 20 {
        random.extend_from_slice(&stream.next_u64().to_le_bytes());
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.json",
            good.as_bytes()[..good.len() / 2].to_vec(),
            "malformed JSON at line 1",
        ),
        (
            "wrong-type.json",
            reply_with(vec![replies::product(199, 1), wrong_type], DATE).into_bytes(),
            &wrong_type_message,
        ),
        (
            "bad-number.json",
            reply_with(vec![bad_number], DATE).into_bytes(),
            "field Map_scale: expected a number, found \"half a metre\"",
        ),
        (
            "no-pdsid.json",
            reply_with(vec![no_pdsid], DATE).into_bytes(),
            "product #1: required field pdsid is missing",
        ),
        (
            "hostile.json",
            reply_with(vec![hostile], DATE).into_bytes(),
            "pdsid \"../../ETC/PASSWD\" is not a safe name: it contains a path separator",
        ),
        (
            "hostile-file.json",
            reply_with(vec![hostile_file], DATE).into_bytes(),
            "file #4: FileName \"../evil.JP2\" is not a safe name",
        ),
        (
            "out-of-range.json",
            reply_with(vec![out_of_range], DATE).into_bytes(),
            "field Maximum_latitude: expected a latitude in -90..=90, found \"95.5\"",
        ),
        ("random.bin", random, "not UTF-8 text"),
        ("empty.json", b"  \n".to_vec(), "the reply is empty"),
        (
            "html.json",
            b"Service Unavailable".to_vec(),
            "not an ODE reply",
        ),
        (
            "other.json",
            br#"{"results": []}"#.to_vec(),
            "no ODEResults element: this is an object with keys results",
        ),
        (
            "broken.xml",
            b"<ODEResults><Products><Product><pdsid>X</pdsid></Products>".to_vec(),
            "malformed XML",
        ),
        (
            "error.json",
            br#"{"ODEResults": {"Status": "ERROR", "Error": "Invalid target"}}"#.to_vec(),
            "the ODE server answered with an error: Invalid target",
        ),
    ];
    for (name, content, expected) in cases {
        let error = f.import(&f.write(name, content)).unwrap_err().to_string();
        assert!(
            error.contains(name),
            "{name}: the error names the file: {error}"
        );
        assert!(
            error.contains(expected),
            "{name}: expected {expected:?} in {error:?}"
        );
    }
    assert_eq!(f.snapshot(), before, "no bad reply changed the catalog");
    assert_eq!(f.catalog.verify().unwrap(), Vec::<String>::new());
}

#[test]
fn xml_and_json_replies_give_the_same_records() {
    let product = json!({
        "pdsid": "ESP_000001_0001_RED", "ihid": "MRO", "iid": "HIRISE", "pt": "RDRV11",
        "Center_latitude": "-0.5", "Westernmost_longitude": "359.9", "Easternmost_longitude": "0.1",
        "Minimum_latitude": "-0.6", "Maximum_latitude": "-0.4", "Comment": "Dunes & ripples <here>",
        "ODE_notes": {"ODE_note": ["only one note"]},
        "Product_files": {"Product_file": {"FileName": "ESP_000001_0001_RED.JP2", "Type": "Product", "URL": "https://x/ESP_000001_0001_RED.JP2", "KBytes": "12"}}
    });
    let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<ODEResults><Products><Product>
  <pdsid>ESP_000001_0001_RED</pdsid><ihid>MRO</ihid><iid>HIRISE</iid><pt>RDRV11</pt>
  <Center_latitude>-0.5</Center_latitude><Westernmost_longitude>359.9</Westernmost_longitude>
  <Easternmost_longitude>0.1</Easternmost_longitude><Minimum_latitude>-0.6</Minimum_latitude>
  <Maximum_latitude>-0.4</Maximum_latitude><Comment>Dunes &amp; ripples &lt;here&gt;</Comment>
  <ODE_notes><ODE_note>only one note</ODE_note></ODE_notes>
  <Product_files><Product_file><FileName>ESP_000001_0001_RED.JP2</FileName><Type>Product</Type>
    <URL>https://x/ESP_000001_0001_RED.JP2</URL><KBytes>12</KBytes></Product_file></Product_files>
</Product></Products>
<QuerySummary><Date>2026-01-01T00:00:00.000</Date></QuerySummary><Status>Success</Status></ODEResults>"#;
    let from_json = areo::ode::parse_reply(reply_with(vec![product], DATE).as_bytes()).unwrap();
    let from_xml = areo::ode::parse_reply(xml.as_bytes()).unwrap();
    assert_eq!(from_json.products, from_xml.products);
    let p = &from_xml.products[0].product;
    assert_eq!(p.comment.as_deref(), Some("Dunes & ripples <here>"));
    assert_eq!(p.ode_notes, vec!["only one note"]);
    assert!(p.bbox.unwrap().wraps());
    assert_eq!(
        from_xml.products[0].files.as_ref().unwrap()[0].kbytes,
        Some(12)
    );
}

#[test]
fn queries_through_the_indexes_match_a_full_scan() {
    let f = Fixture::new();
    f.import_text("many.json", &replies::reply(0, 3000, 5, DATE))
        .unwrap();
    let all = f.catalog.query(&ProductQuery::default()).unwrap();
    assert_eq!(all.len(), 3000);
    assert!(
        all.iter().any(|r| r.product.bbox.unwrap().wraps()),
        "some cross 0/360"
    );
    assert!(
        all.iter()
            .any(|r| r.product.bbox.unwrap().lon_span() == 360.0),
        "some are polar"
    );

    let mut stream = replies::Stream::new(77);
    let mut boxes: Vec<LonLatBox> = [
        "355,5,-10,10",
        "0,360,80,90",
        "0,360,-90,-85",
        "100,100.5,0,0.5",
        "359.99,0.01,-90,90",
    ]
    .iter()
    .map(|b| b.parse().unwrap())
    .collect();
    for _ in 0..40 {
        let (w, width) = (stream.uniform(0.0, 360.0), stream.uniform(0.1, 40.0));
        let (s, height) = (stream.uniform(-90.0, 80.0), stream.uniform(0.1, 30.0));
        boxes.push(LonLatBox::new(w, (w + width) % 360.0, s, (s + height).min(90.0)).unwrap());
    }
    let mut hits = 0;
    for bbox in boxes {
        let expected: Vec<&str> = all
            .iter()
            .filter(|r| r.product.bbox.unwrap().intersects(&bbox))
            .map(|r| r.product.pdsid.as_str())
            .collect();
        let found = f
            .catalog
            .query(&ProductQuery {
                bbox: Some(bbox),
                ..Default::default()
            })
            .unwrap();
        let found: Vec<&str> = found.iter().map(|r| r.product.pdsid.as_str()).collect();
        assert_eq!(found, expected, "bbox {bbox}");
        hits += found.len();
    }
    assert!(hits > 100, "the boxes found products ({hits})");

    let ctx = f
        .catalog
        .query(&ProductQuery {
            instrument: Some("ctx".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ctx.len(), 1000, "every third product is CTX");
    assert!(ctx
        .iter()
        .all(|r| r.product.instrument == "CTX" && r.product.product_type == "EDR"));
    let none = f
        .catalog
        .query(&ProductQuery {
            instrument: Some("HIRISE".into()),
            product_type: Some("EDR".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(none.is_empty());
    let limited = f
        .catalog
        .query(&ProductQuery {
            instrument: Some("HIRISE".into()),
            limit: Some(7),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(limited.len(), 7);
    assert!(
        limited
            .windows(2)
            .all(|w| w[0].product.pdsid < w[1].product.pdsid),
        "in pdsid order"
    );
}

#[test]
fn state_filters_and_stats_follow_file_changes() {
    let f = Fixture::new();
    f.import_text("page.json", &replies::reply(0, 6, 3, DATE))
        .unwrap();
    let rows = f.catalog.query(&ProductQuery::default()).unwrap();
    let (a, b) = (&rows[0].product.pdsid, &rows[1].product.pdsid);
    let first_file = |pdsid: &str| f.catalog.files(pdsid).unwrap()[0].name.clone();
    f.catalog
        .update_file(a, &first_file(a), |file| {
            file.state = FileState::Complete;
            file.size = Some(1000);
        })
        .unwrap();
    f.catalog
        .update_file(b, &first_file(b), |file| {
            file.state = FileState::Downloading
        })
        .unwrap();
    let by_state = |state| {
        f.catalog
            .query(&ProductQuery {
                state: Some(state),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|r| r.product.pdsid)
            .collect::<Vec<_>>()
    };
    assert_eq!(by_state(FileState::Complete), vec![a.clone()]);
    assert_eq!(by_state(FileState::Downloading), vec![b.clone()]);
    assert_eq!(by_state(FileState::Remote).len(), 4);
    assert!(by_state(FileState::Failed).is_empty());

    let stats = f.catalog.stats().unwrap();
    assert_eq!(stats.products, 6);
    // Products 0,1,3,4 are HiRISE RED (24 files), 2 and 5 CTX EDR (6 files).
    assert_eq!(stats.by_instrument["HIRISE"]["RDRV11"], 4);
    assert_eq!(stats.by_instrument["CTX"]["EDR"], 2);
    assert_eq!(stats.files, 4 * 24 + 2 * 6);
    assert_eq!(stats.files_by_state[&FileState::Complete], 1);
    assert_eq!(stats.files_by_state[&FileState::Downloading], 1);
    assert_eq!(stats.files_by_state[&FileState::Remote], 4 * 24 + 2 * 6 - 2);
    assert_eq!(stats.bytes_on_disk, 1000);
    assert_eq!(
        rows.iter()
            .find(|r| &r.product.pdsid == a)
            .unwrap()
            .bytes_on_disk,
        0,
        "before"
    );
    assert_eq!(
        f.catalog
            .row(f.catalog.product(a).unwrap().unwrap())
            .unwrap()
            .bytes_on_disk,
        1000
    );

    let missing = f.catalog.update_file(a, "NOPE.JP2", |_| {}).unwrap_err();
    assert!(
        missing.to_string().contains("has no file NOPE.JP2"),
        "{missing}"
    );
    assert_eq!(f.catalog.verify().unwrap(), Vec::<String>::new());
}

#[test]
fn upsert_reports_each_outcome() {
    let f = Fixture::new();
    let reply = areo::ode::parse_reply(replies::reply(0, 3, 1, DATE).as_bytes()).unwrap();
    assert_eq!(
        f.catalog.upsert(&reply.products).unwrap(),
        vec![Upsert::Inserted; 3]
    );
    assert_eq!(
        f.catalog.upsert(&reply.products).unwrap(),
        vec![Upsert::Unchanged; 3]
    );
}

#[test]
fn the_catalog_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("page.json");
    std::fs::write(&path, replies::reply(0, 10, 1, DATE)).unwrap();
    {
        let catalog = Catalog::open(&dir.path().join("catalog")).unwrap();
        import_reply_files(&catalog, &[path], &Silent)
            .pop()
            .unwrap()
            .unwrap();
        catalog.flush().unwrap();
    }
    let catalog = Catalog::open(&dir.path().join("catalog")).unwrap();
    assert_eq!(catalog.stats().unwrap().products, 10);
    assert_eq!(catalog.verify().unwrap(), Vec::<String>::new());
}

fn artifact(kind: ArtifactKind, name: &str, inputs: Vec<Input>) -> Artifact {
    Artifact {
        kind,
        name: name.to_string(),
        path: PathBuf::from("/ws").join(name),
        created: areo::product::UtcTime::parse(DATE).unwrap(),
        job: Some(7),
        inputs,
        summary: r#"{"chips":12}"#.to_string(),
    }
}

/// Tile sets, datasets and runs kept with what they came from: the made-from index follows
/// a replaced record, and everything survives reopening a catalog stamped at version 1.
#[test]
fn artifacts_remember_what_they_were_made_from() {
    let fixture = Fixture::new();
    let catalog = &fixture.catalog;
    let product = Input::Product("ESP_011605_1685_RED".into());
    let labels = Input::File(PathBuf::from("/data/craters.csv"));
    let tiles = artifact(
        ArtifactKind::TileSet,
        "tiles/esp",
        vec![product.clone(), labels.clone()],
    );
    catalog.put_artifact(&tiles).unwrap();
    let tile_input = Input::Artifact(ArtifactKind::TileSet, "tiles/esp".into());
    catalog
        .put_artifact(&artifact(
            ArtifactKind::Dataset,
            "craters",
            vec![tile_input.clone()],
        ))
        .unwrap();
    // A name that extends another's must not show up under it.
    catalog
        .put_artifact(&artifact(ArtifactKind::TileSet, "tiles/esp2", vec![]))
        .unwrap();

    assert_eq!(
        catalog.made_from(&product).unwrap(),
        std::slice::from_ref(&tiles)
    );
    assert_eq!(
        catalog.made_from(&labels).unwrap(),
        std::slice::from_ref(&tiles)
    );
    let from_tiles = catalog.made_from(&tile_input).unwrap();
    assert_eq!(from_tiles.len(), 1);
    assert_eq!(from_tiles[0].name, "craters");
    let names = |kind| -> Vec<String> {
        catalog
            .artifacts(kind)
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect()
    };
    assert_eq!(
        names(Some(ArtifactKind::TileSet)),
        ["tiles/esp", "tiles/esp2"]
    );
    assert_eq!(names(None), ["craters", "tiles/esp", "tiles/esp2"]);

    // Cut again from the labels alone: the product no longer lists it.
    let again = artifact(ArtifactKind::TileSet, "tiles/esp", vec![labels.clone()]);
    catalog.put_artifact(&again).unwrap();
    assert!(catalog.made_from(&product).unwrap().is_empty());
    assert_eq!(
        catalog.made_from(&labels).unwrap(),
        std::slice::from_ref(&again)
    );
    assert_eq!(
        catalog
            .artifact(ArtifactKind::TileSet, "tiles/esp")
            .unwrap(),
        Some(again.clone())
    );
    assert_eq!(
        catalog.artifact(ArtifactKind::Run, "tiles/esp").unwrap(),
        None
    );

    assert_eq!(
        catalog.verify().unwrap(),
        Vec::<String>::new(),
        "the made-from index matches the artefacts"
    );

    let Fixture { dir, catalog } = fixture;
    drop(catalog);
    let reopened = Catalog::open(&dir.path().join("catalog")).unwrap();
    assert_eq!(reopened.made_from(&labels).unwrap(), [again]);

    // An index entry no artefact accounts for is reported by the check.
    drop(reopened);
    {
        let db = open_when_released(&dir.path().join("catalog")).unwrap();
        db.open_tree("idx_made_from")
            .unwrap()
            .insert(b"pGONE\0run\0ghost", b"run\0ghost".as_slice())
            .unwrap();
        db.flush().unwrap();
    }
    let checked = Catalog::open(&dir.path().join("catalog")).unwrap();
    assert_eq!(
        checked.verify().unwrap(),
        ["idx_made_from has stray entry pGONE/run/ghost"]
    );
}

/// A catalog written before artefacts existed (schema 1) opens, is migrated, and takes them.
#[test]
fn a_version_1_catalog_is_migrated_to_hold_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog");
    {
        let db = open_when_released(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &1u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let catalog = Catalog::open(&path).unwrap();
    let made = artifact(ArtifactKind::Run, "unet", vec![]);
    catalog.put_artifact(&made).unwrap();
    assert_eq!(catalog.artifacts(None).unwrap(), [made]);
    drop(catalog);
    let db = open_when_released(&path).unwrap();
    let version = db.open_tree("meta").unwrap().get("schema_version").unwrap();
    assert_eq!(version.as_deref(), Some(&2u32.to_be_bytes()[..]));
}
