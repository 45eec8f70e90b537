//! ODE product replies generated in the service's real format (every value a string, files
//! under `Product_files.Product_file`), for tests and benchmarks that need many products.
//! Shared by `tests/` and `benches/` through `#[path]`.

#![allow(dead_code)]

use serde_json::{json, Map, Value};

/// A deterministic stream of numbers (splitmix64), so generated catalogs are reproducible.
pub struct Stream(u64);

impl Stream {
    pub fn new(seed: u64) -> Self {
        Stream(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn s(value: impl ToString) -> Value {
    Value::String(value.to_string())
}

fn file(file_type: &str, name: &str, description: &str, kbytes: u64, url: &str) -> Value {
    json!({"Description": description, "FileName": name, "KBytes": s(kbytes), "Type": file_type, "URL": url})
}

/// The 24 files ODE lists for a HiRISE RDR V1.1 RED product (same names, types and
/// descriptions as the real replies; sizes drawn around the real ones).
fn hirise_files(observation: &str, pdsid: &str, rng: &mut Stream) -> Vec<Value> {
    let orbit: u32 = observation[4..10].parse().unwrap();
    let base = format!(
        "https://hirise.lpl.arizona.edu/PDS/EXTRAS/RDR/{}/ORB_{:06}_{:06}/{observation}",
        &observation[..3],
        orbit / 100 * 100,
        orbit / 100 * 100 + 99
    );
    let mut kb = |typical: f64| (typical * rng.uniform(0.7, 1.3)).ceil() as u64;
    let mut files = vec![
        file(
            "Referenced",
            "DSMAP.CAT",
            "MAP PROJECTION FILE",
            7,
            "https://hirise.lpl.arizona.edu/PDS/CATALOG/DSMAP.CAT",
        ),
        file(
            "Referenced",
            "JP2INFO.TXT",
            "DESCRIPTION FILE",
            9,
            "https://hirise.lpl.arizona.edu/PDS/DOCUMENT/JP2INFO.TXT",
        ),
    ];
    for (merged, what) in [("MIRB", "IRB"), ("MRGB", "RGB")] {
        for (suffix, description, size) in [
            (
                "ABROWSE.JPG",
                format!("ANNOTATED MERGED {what} BROWSE"),
                4700.0,
            ),
            ("BROWSE.JPG", format!("MERGED {what} BROWSE"), 5300.0),
            ("JP2", format!("MERGED {what} JP2"), 420000.0),
            ("LBL", format!("MERGED {what} LABEL"), 9.0),
            ("THUMB.JPG", format!("MERGED {what} THUMBNAIL"), 324.0),
        ] {
            let name = format!("{observation}_{merged}.{suffix}");
            files.push(file(
                "Browse",
                &name,
                &description,
                kb(size),
                &format!("{base}/{name}"),
            ));
        }
    }
    for (file_type, suffix, description, size) in [
        ("Browse", "ABROWSE.JPG", "ANNOTATED BROWSE", 4490.0),
        ("Browse", "BROWSE.JPG", "BROWSE", 5000.0),
        ("Product", "JP2", "PRODUCT DATA FILE", 450000.0),
        ("Product", "LBL", "PRODUCT LABEL FILE", 9.0),
        ("Browse", "NOMAP.BROWSE.JPG", "GREYSCALE BROWSE", 12000.0),
        ("Browse", "NOMAP.JP2", "GREYSCALE JP2", 268000.0),
        ("Browse", "NOMAP.THUMB.JPG", "GREYSCALE THUMBNAIL", 886.0),
        ("Browse", "QLOOK.JP2", "QUICKLOOK JP2", 236000.0),
        ("Browse", "THUMB.JPG", "THUMBNAIL", 323.0),
    ] {
        let name = format!("{pdsid}.{suffix}");
        files.push(file(
            file_type,
            &name,
            description,
            kb(size),
            &format!("{base}/{name}"),
        ));
    }
    for (suffix, description) in [
        ("KML", "PRODUCT KML FILE"),
        ("TAR.GZ", "PRODUCT FOOTPRINT SHAPEFILES (TAR.GZ)"),
        ("ZIP", "PRODUCT FOOTPRINT SHAPEFILES (ZIP)"),
    ] {
        let name = format!("{pdsid}_LBL.{suffix}");
        let url = format!(
            "http://ode.rsl.wustl.edu/mars/datafile/kmlfiles/mro-m-hirise-3-rdr-v11/{}",
            name.to_lowercase()
        );
        files.push(file("Derived", &name, description, kb(10.0), &url));
    }
    files
}

/// The 6 files of a CTX EDR product, as in the real CTX reply.
fn ctx_files(pdsid: &str, volume: &str, rng: &mut Stream) -> Vec<Value> {
    let root = format!(
        "https://pds-imaging.jpl.nasa.gov/data/mro/mars_reconnaissance_orbiter/ctx/{volume}"
    );
    let ode = "https://ode.rsl.wustl.edu/mars/datafile";
    let lower = pdsid.to_lowercase();
    vec![
        file(
            "Product",
            &format!("{pdsid}.IMG"),
            "PRODUCT DATA FILE WITH LABEL",
            (242001.0 * rng.uniform(0.5, 1.5)) as u64,
            &format!("{root}/data/{pdsid}.IMG"),
        ),
        file(
            "Browse",
            &format!("{pdsid}.IMG.JPEG"),
            "BROWSE IMAGE",
            78,
            &format!("{root}/extras/browse/{pdsid}.IMG.jpeg"),
        ),
        file(
            "Browse",
            &format!("{pdsid}.IMG.JPEG_SMALL"),
            "THUMBNAIL IMAGE",
            3,
            &format!("{root}/extras/thumbnail/{pdsid}.IMG.jpeg_small"),
        ),
        file(
            "Derived",
            &format!("{pdsid}_IMG.KML"),
            "PRODUCT KML FILE",
            3,
            &format!("{ode}/kmlfiles/mro-m-ctx-2-edr-l0-v1/{volume}/data/{lower}_img.kml"),
        ),
        file(
            "Derived",
            &format!("{pdsid}_IMG.TAR.GZ"),
            "PRODUCT FOOTPRINT SHAPEFILES (TAR.GZ)",
            4,
            &format!("{ode}/shapefiles/mro-m-ctx-2-edr-l0-v1/{volume}/data/{lower}_img.tar.gz"),
        ),
        file(
            "Derived",
            &format!("{pdsid}_IMG.ZIP"),
            "PRODUCT FOOTPRINT SHAPEFILES (ZIP)",
            26,
            &format!("{ode}/shapefiles/mro-m-ctx-2-edr-l0-v1/{volume}/data/{lower}_img.zip"),
        ),
    ]
}

fn polygon(w: f64, e: f64, s: f64, n: f64) -> String {
    format!("POLYGON (({e:.3} {s:.3}, {w:.3} {s:.3}, {w:.3} {n:.3}, {e:.3} {n:.3}, {e:.3} {s:.3}))")
}

/// Product number `index`: two thirds HiRISE RDR RED, one third CTX EDR, placed uniformly on
/// the planet (latitudes uniform in sine, so the poles are as sparse as on a sphere), with
/// realistic footprint sizes; some cross 0/360 and some cover a pole.
pub fn product(index: u64, seed: u64) -> Value {
    let mut rng = Stream::new(seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let hirise = index % 3 != 2;
    let lat = if index % 500 == 7 {
        // A polar observation every 500 products, alternating between the caps.
        let cap = rng.uniform(89.5, 90.0);
        if index % 1000 == 7 {
            cap
        } else {
            -cap
        }
    } else {
        rng.uniform(-1.0, 1.0).asin().to_degrees()
    };
    let lon = rng.uniform(0.0, 360.0);
    let (half_w_km, half_h_km) = if hirise {
        (3.0, rng.uniform(5.0, 30.0))
    } else {
        (15.0, rng.uniform(20.0, 150.0))
    };
    let km_per_deg = 59.27;
    let half_h = half_h_km / km_per_deg;
    let south = (lat - half_h).max(-90.0);
    let north = (lat + half_h).min(90.0);
    let polar = north >= 89.5 || south <= -89.5;
    let half_w = (half_w_km / km_per_deg / lat.to_radians().cos().max(0.01)).min(180.0);
    let (west, east) = if polar || half_w >= 180.0 {
        (0.0, 360.0)
    } else {
        (
            (lon - half_w).rem_euclid(360.0),
            (lon + half_w).rem_euclid(360.0),
        )
    };
    // Unique per index, so every generated product has its own pdsid.
    let orbit = 1000 + index;
    let crosses = west > east;
    let (pdsid, observation, ihid_iid_pt, files) = if hirise {
        let phase = if orbit < 11000 { "PSP" } else { "ESP" };
        let observation = format!("{phase}_{orbit:06}_{:04}", index % 10000);
        let pdsid = format!("{observation}_RED");
        let files = hirise_files(&observation, &pdsid, &mut rng);
        (pdsid, observation, ("MRO", "HIRISE", "RDRV11"), files)
    } else {
        let observation = format!(
            "B{:02}_{orbit:06}_{:04}_XN_{index:07}",
            index % 100,
            index % 10000
        );
        let volume = format!("mrox_{:04}", index % 4000);
        let files = ctx_files(&observation, &volume, &mut rng);
        (
            observation.clone(),
            observation,
            ("MRO", "CTX", "EDR"),
            files,
        )
    };
    let start = 1_140_000_000 + orbit as i64 * 7000;
    let time = |offset: i64| {
        chrono::DateTime::from_timestamp(start + offset, 431_000_000)
            .unwrap()
            .naive_utc()
            .format("%Y-%m-%dT%H:%M:%S%.3f")
            .to_string()
    };
    let mut p = Map::new();
    let (ihid, iid, pt) = ihid_iid_pt;
    for (key, value) in [
        ("BB_georeferenced", s("True")),
        ("Center_georeferenced", s("True")),
        ("Center_latitude", s(format!("{lat:.3}"))),
        ("Center_longitude", s(format!("{lon:.3}"))),
        ("Comment", s("Generated product for catalog tests")),
        ("Data_Set_Id", s(if hirise { "MRO-M-HIRISE-3-RDR-V1.1" } else { "MRO-M-CTX-2-EDR-L0-V1.0" })),
        ("Description", s("HiRISE projected and mosaicked product")),
        ("Easternmost_longitude", s(format!("{east:.3}"))),
        ("Emission_angle", s(format!("{:.6}", rng.uniform(0.0, 30.0)))),
        ("External_url", s(format!("http://www.uahirise.org/{observation}"))),
        ("FilesURL", s(format!("http://ode.rsl.wustl.edu/mars/productfiles.aspx?product_id={pdsid}&product_idGeo={index}"))),
        ("Footprint_C0_geometry", s(polygon(west, east, south, north))),
        ("Footprint_geometry", s(polygon(west, east, south, north))),
        ("Footprint_GL_geometry", s(polygon(west, east, south, north))),
        ("Footprint_NP_geometry", s(if north >= 89.5 { polygon(0.0, 360.0, south, north) } else { "MULTIPOLYGON EMPTY".into() })),
        ("Footprint_souce", s("PDS Archive Index Table")),
        ("Footprint_SP_geometry", s(if south <= -89.5 { polygon(0.0, 360.0, south, north) } else { "MULTIPOLYGON EMPTY".into() })),
        ("Footprints_cross_meridian", s(if crosses { "True" } else { "False" })),
        ("ihid", s(ihid)),
        ("iid", s(iid)),
        ("Incidence_angle", s(format!("{:.6}", rng.uniform(20.0, 80.0)))),
        ("LabelFileName", s(format!("{}.lbl", pdsid.to_lowercase()))),
        ("LabelURL", s(format!("https://hirise.lpl.arizona.edu/PDS/RDR/{pdsid}.LBL"))),
        ("Map_resolution", s(format!("{:.8}", rng.uniform(59000.0, 237000.0)))),
        ("Map_scale", s(if hirise { "0.25" } else { "5.0" })),
        ("Maximum_latitude", s(format!("{north:.3}"))),
        ("Minimum_latitude", s(format!("{south:.3}"))),
        ("Observation_id", s(&observation)),
        ("Observation_time", s(time(5))),
        ("ODE_notes", json!({"ODE_note": ["NOTE: Product Type set by ODE", "NOTE: Map scale from the label map projection object"]})),
        ("pdsid", s(&pdsid)),
        ("PDSVolume_Id", s("MROHR_0001")),
        ("Phase_angle", s(format!("{:.6}", rng.uniform(20.0, 90.0)))),
        ("Pole_state", s(if polar { "north" } else { "none" })),
        ("Producer_id", s("UA")),
        ("Product_creation_time", s(time(86_400 * 20))),
        ("Product_files", json!({"Product_file": files})),
        ("Product_version_id", s("1.0")),
        ("ProductURL", s(format!("http://ode.rsl.wustl.edu/mars/indexproductpage.aspx?product_id={pdsid}"))),
        ("pt", s(pt)),
        ("RelativePathtoVol", s("rdr\\esp\\")),
        ("Solar_longitude", s(format!("{:.6}", rng.uniform(0.0, 360.0)))),
        ("Solar_time", s(format!("{:.5}", rng.uniform(13.0, 16.0)))),
        ("SpaceCraft_clock_start_count", s(format!("{start}:10609"))),
        ("SpaceCraft_clock_stop_count", s(format!("{}:30193", start + 9))),
        ("Start_orbit_number", s(orbit)),
        ("Stop_orbit_number", s(orbit)),
        ("Target_name", s("MARS")),
        ("UTC_start_time", s(time(0))),
        ("UTC_stop_time", s(time(9))),
        ("Westernmost_longitude", s(format!("{west:.3}"))),
    ] {
        p.insert(key.to_string(), value);
    }
    Value::Object(p)
}

/// A whole reply holding products `first..first + count`, as `results=fmpc` returns a page.
pub fn reply(first: u64, count: u64, seed: u64, date: &str) -> String {
    let products: Vec<Value> = (first..first + count).map(|i| product(i, seed)).collect();
    json!({
        "ODEResults": {
            "Count": s(count),
            "Products": {"Product": products},
            "QuerySummary": {"Date": date, "output": "JSON", "query": "PRODUCT", "results": "FMPC", "target": "mars"},
            "Status": "Success"
        }
    })
    .to_string()
}
