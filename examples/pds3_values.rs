//! Prints what areo reads from a PDS3 product, as JSON, for `bench/pds3.sh` to compare with
//! the product's known pixels and with GDAL's and pdr's readings:
//!
//! - `physical`: every sample as `raw * SCALING_FACTOR + OFFSET` (f32), `null` where no data,
//!   row-major with each pixel's bands side by side;
//! - `image` and `values`: the 8/16-bit samples tiling and inference see, and the rule that
//!   gives the physical values back (`values.no_data` is the sample that marks no data).
//!
//! `cargo run --release --example pds3_values -- PRODUCT.LBL`

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("give a PDS3 label (attached or detached)"))?
        .into();
    let (_, layout, raster) = areo::pds::img::read(&path)?;
    let (image, values) = areo::pipeline::source::open_image(&path)?;
    let finite = |v: f32| v.is_finite().then_some(v);
    let report = serde_json::json!({
        "width": raster.width,
        "height": raster.height,
        "bands": raster.bands,
        "sample_type": format!("{:?}", layout.sample_type),
        "physical": raster.values.iter().map(|v| finite(*v)).collect::<Vec<_>>(),
        "image": image.data,
        "values": values,
    });
    println!("{report}");
    Ok(())
}
