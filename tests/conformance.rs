//! Conformance with the real ODE replies in `../shared/fixtures/ode/`. Ignored by default (a
//! fresh clone has no `../shared`); `.ci/run` runs them with `--ignored`.

use areo::catalog::{Catalog, ProductQuery};
use areo::ode::reply::{parse_file_list, parse_reply, ReplyError};
use areo::pipeline::import::import_reply_files;
use areo::product::{FileKind, UtcTime};
use areo::progress::Silent;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/ode")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

#[test]
#[ignore = "reads ../shared/fixtures"]
fn the_single_product_reply_keeps_every_field_typed() {
    let reply = parse_reply(&read("product_by_pdsid_hirise_color_single.json")).unwrap();
    assert_eq!(reply.count, None, "no c in results");
    assert_eq!(
        reply.retrieved_at,
        UtcTime::parse("2020-09-02T09:33:48.170")
    );
    assert_eq!(reply.query_summary["productId"], "ESP_016430_2095_COLOR");
    assert_eq!(
        reply.products.len(),
        1,
        "Product is an object, not an array"
    );
    let entry = &reply.products[0];
    let p = &entry.product;
    assert!(
        p.extra.is_empty(),
        "every field has a typed home: {:?}",
        p.extra.keys()
    );
    assert_eq!(p.pdsid, "ESP_016430_2095_COLOR");
    assert_eq!(
        (
            p.instrument_host.as_str(),
            p.instrument.as_str(),
            p.product_type.as_str()
        ),
        ("MRO", "HIRISE", "RDRV11")
    );
    assert_eq!(p.center_latitude, Some(29.063));
    assert_eq!(p.center_longitude, Some(72.707));
    let bbox = p.bbox.unwrap();
    assert_eq!(
        (bbox.west, bbox.east, bbox.south, bbox.north),
        (72.65, 72.74, 28.82, 29.303)
    );
    assert_eq!(p.map_scale, Some(0.5));
    assert_eq!(p.map_resolution, Some(118423.85738967));
    assert_eq!(
        (p.incidence_angle, p.emission_angle, p.phase_angle),
        (Some(40.281507), Some(0.345931), Some(40.333961))
    );
    assert_eq!(
        (p.solar_longitude, p.solar_time),
        (Some(43.690602), Some(14.80555))
    );
    assert_eq!(
        p.observation_time.unwrap().to_string(),
        "2010-01-27T17:48:41.108"
    );
    assert_eq!(p.start_time.unwrap().to_string(), "2010-01-27T17:48:36.431");
    assert_eq!(p.stop_time.unwrap().to_string(), "2010-01-27T17:48:45.785");
    assert_eq!(
        p.creation_time.unwrap().to_string(),
        "2010-02-12T07:25:48.000"
    );
    assert_eq!((p.start_orbit, p.stop_orbit), (Some(16430), Some(16430)));
    assert_eq!(p.spacecraft_clock_start.as_deref(), Some("949081747:10609"));
    assert_eq!(p.footprints.crosses_meridian, Some(false));
    assert_eq!(
        p.footprints.source.as_deref(),
        Some("PDS Archive Index Table")
    );
    assert!(p
        .footprints
        .gl
        .as_deref()
        .unwrap()
        .starts_with("POLYGON ((72.74 28.822"));
    assert_eq!(p.footprints.np, None, "MULTIPOLYGON EMPTY is no footprint");
    assert_eq!(
        (p.bb_georeferenced, p.center_georeferenced),
        (Some(true), Some(true))
    );
    assert_eq!(p.pole_state.as_deref(), Some("none"));
    assert_eq!(p.ode_notes.len(), 9);
    assert_eq!(
        p.relative_path.as_deref(),
        Some("rdr\\esp\\orb_016400_016499\\esp_016430_2095\\")
    );
    assert_eq!(p.volume_id.as_deref(), Some("MROHR_0001"));
    let files = entry.files.as_ref().unwrap();
    assert_eq!(files.len(), 27);
    let jp2 = files
        .iter()
        .find(|f| f.name == "ESP_016430_2095_COLOR.JP2")
        .unwrap();
    assert_eq!(
        (jp2.kind(), jp2.kbytes, jp2.file_type.as_str()),
        (FileKind::Image, Some(251882), "Product")
    );
    let kml = files.iter().find(|f| f.name.ends_with(".KML")).unwrap();
    assert_eq!(kml.created.unwrap().to_string(), "2015-10-19T04:24:13.456");
    assert_eq!(kml.kind(), FileKind::Derived);
    let kinds = |kind| files.iter().filter(|f| f.kind() == kind).count();
    assert_eq!(kinds(FileKind::Label), 3, "COLOR, MIRB and MRGB labels");
    assert_eq!(kinds(FileKind::Thumbnail), 5);
}

#[test]
#[ignore = "reads ../shared/fixtures"]
fn the_xml_reply_reads_the_same_as_the_json_one() {
    let json = parse_reply(&read("product_by_pdsid_hirise_color_single.json")).unwrap();
    let xml = parse_reply(&read(
        "product_by_pdsid_hirise_color_single_reconstructed.xml",
    ))
    .unwrap();
    assert_eq!(xml.products, json.products);
    assert_eq!(xml.retrieved_at, json.retrieved_at);
}

#[test]
#[ignore = "reads ../shared/fixtures"]
fn the_six_product_search_imports_with_its_meridian_crossings() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path()).unwrap();
    let path = fixture("product_search_hirise_rdrv11_bbox_6products.json");
    let report = import_reply_files(&catalog, std::slice::from_ref(&path), &Silent)
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(
        (report.products, report.stored.inserted, report.count),
        (6, 6, Some(6))
    );
    let again = import_reply_files(&catalog, &[path], &Silent)
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(again.stored.unchanged, 6);

    let rows = catalog.query(&ProductQuery::default()).unwrap();
    for row in &rows {
        assert!(
            row.product.extra.is_empty(),
            "{}: {:?}",
            row.product.pdsid,
            row.product.extra.keys()
        );
        let crosses = row.product.footprints.crosses_meridian.unwrap();
        assert_eq!(
            row.product.bbox.unwrap().wraps(),
            crosses,
            "{}",
            row.product.pdsid
        );
        let files = catalog.files(&row.product.pdsid).unwrap();
        let expected = if row.product.pdsid.ends_with("COLOR") {
            27
        } else {
            24
        };
        assert_eq!(files.len(), expected, "{}", row.product.pdsid);
    }
    assert_eq!(
        rows.iter()
            .filter(|r| r.product.bbox.unwrap().wraps())
            .count(),
        4
    );
    // The query that produced the reply: a 1 x 1 degree box across 0/360.
    let bbox = "359.5,0.5,-0.5,0.5".parse().unwrap();
    let found = catalog
        .query(&ProductQuery {
            bbox: Some(bbox),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 6);
    let east_only = "0.05,1,-0.5,0.5".parse().unwrap();
    let found = catalog
        .query(&ProductQuery {
            bbox: Some(east_only),
            ..Default::default()
        })
        .unwrap();
    let ids: Vec<&str> = found.iter().map(|r| r.product.pdsid.as_str()).collect();
    assert_eq!(
        ids,
        ["ESP_041909_1800_RED", "PSP_007361_1800_RED"],
        "only footprints reaching east of 0.05"
    );
    assert_eq!(catalog.verify().unwrap(), Vec::<String>::new());
}

#[test]
#[ignore = "reads ../shared/fixtures"]
fn error_replies_are_rejected_with_the_servers_message() {
    for name in [
        "error_missing_ihid_iid_pt.json",
        "error_missing_ihid_iid_pt_reconstructed.xml",
    ] {
        match parse_reply(&read(name)) {
            Err(ReplyError::Server { message }) => assert!(
                message.starts_with(
                    "ODE V2.1.3 - ODE Rest requires either a combination of IHID, IID, and PT"
                ),
                "{name}: {message}"
            ),
            other => panic!("{name}: expected the server's error, got {other:?}"),
        }
    }
}

#[test]
#[ignore = "reads ../shared/fixtures"]
fn the_count_reply_has_a_count_and_no_products() {
    let reply = parse_reply(&read("product_count_hirise_rdrv11_bbox_reconstructed.json")).unwrap();
    assert_eq!(reply.count, Some(6));
    assert!(reply.products.is_empty());
}

#[test]
#[ignore = "reads ../shared/fixtures"]
fn the_partial_ctx_file_list_is_read_as_files_and_refused_as_a_reply() {
    let bytes = read("ctx_edr_product_file_list_partial.json");
    match parse_reply(&bytes) {
        Err(ReplyError::BareList { items: 6 }) => {}
        other => panic!("expected a bare-list error, got {other:?}"),
    }
    let files = parse_file_list(&bytes).unwrap();
    let kinds: Vec<FileKind> = files.iter().map(|f| f.kind()).collect();
    use FileKind::*;
    assert_eq!(kinds, [Image, Browse, Thumbnail, Derived, Derived, Derived]);
    assert_eq!(files[0].kbytes, Some(242001));
    assert_eq!(files[0].max_expected_bytes(), Some(242_001_000));
    assert!(files[0]
        .url
        .starts_with("https://pds-imaging.jpl.nasa.gov/data/mro/"));
}
