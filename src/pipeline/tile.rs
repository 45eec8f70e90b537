//! Tiling an image into chips on disk: PNG chips, optional per-chip class masks from the
//! image's labels, and a `manifest.json` that says where each chip came from (pixels, and
//! projected metres when a PDS label gives the map projection).

use crate::labels::{rasterize, ClassMap, ImageLabels};
use crate::pds::MapProjection;
use crate::raster::tile::{tile, TileSpec};
use crate::raster::{Image, RasterError};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TileError {
    #[error(transparent)]
    Raster(#[from] RasterError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Labels(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct ChipEntry {
    pub file: String,
    /// Mask file, when labels were given.
    pub mask: Option<String>,
    /// Pixel box in the source: x, y, width, height.
    pub pixels: [u32; 4],
    /// Projected metres of the chip's corners: west, north, east, south.
    pub ground: Option<[f64; 4]>,
    pub objects: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub source: PathBuf,
    pub width: u32,
    pub height: u32,
    pub bands: u32,
    pub bit_depth: u32,
    pub size: u32,
    pub stride: u32,
    pub projection: Option<String>,
    pub chips: Vec<ChipEntry>,
}

/// Cuts `image` (read from `source`, which names the chips and the manifest) into chips
/// under `out` and writes `out/manifest.json`.
pub fn tile_image(
    image: &Image,
    source: &Path,
    out: &Path,
    spec: &TileSpec,
    projection: Option<&MapProjection>,
    labels: Option<(&ImageLabels, &ClassMap)>,
) -> Result<Manifest, TileError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TileError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let stem = source
        .file_stem()
        .map_or_else(|| "image".to_string(), |s| s.to_string_lossy().into_owned());
    let mut manifest = Manifest {
        source: source.to_path_buf(),
        width: image.width,
        height: image.height,
        bands: image.bands,
        bit_depth: image.depth.max().log2().ceil() as u32,
        size: spec.size,
        stride: spec.stride,
        projection: projection.map(|p| p.projection.clone()),
        chips: Vec::new(),
    };
    for chip in tile(image, spec)? {
        let file = format!("{stem}_{}_{}.png", chip.x, chip.y);
        chip.image.save_png(&out.join(&file))?;
        let ground = projection.map(|p| {
            let (west, north) = p.pixel_to_map(chip.x as f64, chip.y as f64);
            let (east, south) =
                p.pixel_to_map((chip.x + spec.size) as f64, (chip.y + spec.size) as f64);
            [west, north, east, south]
        });
        let (mask, objects) = match labels {
            Some((labels, classes)) => {
                let (window, _) = labels.cropped(chip.x, chip.y, spec.size, spec.size, &file);
                let raster = rasterize::semantic(&window, classes)
                    .map_err(|e| TileError::Labels(e.to_string()))?;
                let mask_file = format!("{stem}_{}_{}.mask.png", chip.x, chip.y);
                let mut mask = Image::new(
                    raster.width,
                    raster.height,
                    1,
                    crate::raster::BitDepth::Eight,
                );
                mask.data = raster.pixels.iter().map(|v| *v as f32).collect();
                mask.save_png(&out.join(&mask_file))?;
                (Some(mask_file), Some(window.objects.len()))
            }
            None => (None, None),
        };
        manifest.chips.push(ChipEntry {
            file,
            mask,
            pixels: [chip.x, chip.y, spec.size, spec.size],
            ground,
            objects,
        });
    }
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    let path = out.join("manifest.json");
    crate::fsio::write_atomically(&path, text.as_bytes()).map_err(io(&path))?;
    Ok(manifest)
}
