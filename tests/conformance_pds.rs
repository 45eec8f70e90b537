//! The real HiRISE RDR label in `../shared/fixtures/ode/` (CRLF, as published, with GDAL's test
//! edit of `COMPRESSED_FILE.FILE_NAME`). Ignored by default; `.ci/run` runs it.

use areo::pds::img::SampleType;
use areo::pds::pvl::Value;
use areo::pds::{parse, ImageLayout, MapProjection};

#[test]
#[ignore = "reads ../shared/fixtures"]
fn the_hirise_rdr_label_parses_with_its_projection_and_image() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/ode/hirise_ESP_013951_1955_RED.LBL");
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.windows(2).any(|w| w == b"\r\n"), "CRLF line endings");
    let label = parse(&bytes).unwrap();
    assert_eq!(label.length, bytes.len());
    assert_eq!(
        label.get("PRODUCT_ID").and_then(Value::as_str),
        Some("ESP_013951_1955_RED")
    );
    assert_eq!(
        label.get("DATA_SET_NAME").and_then(Value::as_str),
        Some("MRO MARS HIGH RESOLUTION IMAGING SCIENCE EXPERIMENT RDR V1.1")
    );
    assert_eq!(label.get("ORBIT_NUMBER"), Some(&Value::Integer(13951)));
    let Some(Value::Sequence(sources)) = label.get("SOURCE_PRODUCT_ID") else {
        panic!()
    };
    assert_eq!(sources.len(), 20);
    assert_eq!(
        label
            .get("TIME_PARAMETERS.MRO:OBSERVATION_START_TIME")
            .and_then(Value::as_str),
        Some("2009-07-18T13:54:41.340")
    );
    let Some(Value::Sequence(binning)) = label.get("INSTRUMENT_SETTING_PARAMETERS.MRO:BINNING")
    else {
        panic!()
    };
    assert_eq!(binning[0], Value::Integer(2));
    assert_eq!(binning[13], Value::Integer(-9998));
    assert_eq!(
        label
            .get("COMPRESSED_FILE.FILE_NAME")
            .and_then(Value::as_str),
        Some("byte.tif")
    );
    assert_eq!(
        label.get("IMAGE.SAMPLE_BIT_MASK"),
        Some(&Value::Integer(1023))
    );
    let local = label.get("VIEWING_PARAMETERS.LOCAL_TIME").unwrap();
    assert_eq!(
        (local.as_f64(), local.unit()),
        (Some(14.37002), Some("LOCALDAY/24"))
    );

    let projection = MapProjection::from_label(&label).unwrap().unwrap();
    assert_eq!(projection.projection, "EQUIRECTANGULAR");
    assert_eq!(
        (projection.map_scale, projection.map_resolution),
        (0.5, Some(118502.26464032))
    );
    assert_eq!(
        (projection.center_latitude, projection.center_longitude),
        (15.0, 180.0)
    );
    assert_eq!(projection.a_axis_radius, Some(3394.8398133163));
    // GDAL's autotest (gdrivers/pds.py::test_pds_6) expects this geotransform for the label.
    assert_eq!(
        projection.geotransform(),
        [-6139197.5, 0.5, 0.0, 936003.0, 0.0, -0.5]
    );

    let layout = ImageLayout::from_label(&label).unwrap();
    assert_eq!(
        layout.file.as_deref(),
        Some("ESP_013951_1955_RED_cnode26:398.IMG")
    );
    assert_eq!(
        (layout.offset, layout.lines, layout.samples, layout.bands),
        (0, 67395, 19243, 1)
    );
    assert_eq!(layout.sample_type, SampleType::U16 { big_endian: true });
    assert_eq!(
        (layout.scaling_factor, layout.value_offset),
        (1.07543902665525e-04, 0.081203337858079)
    );
    assert_eq!(layout.no_data, [0.0]);
    assert_eq!(
        layout.byte_len(),
        2 * 19243 * 67395,
        "RECORD_BYTES 38486 per line"
    );
}
