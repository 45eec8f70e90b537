//! Tiling an image into chips on disk: PNG chips, optional per-chip class masks from the
//! image's labels, and a `manifest.json` that says where each chip came from (pixels, and
//! projected metres when a PDS label gives the map projection).

use super::labels::{read_file, Format, ReadOptions};
use crate::labels::{rasterize, ClassMap, ImageLabels, ImageSize};
use crate::pds::{MapProjection, Value};
use crate::progress::Progress;
use crate::raster::tile::{tile, TileSpec};
use crate::raster::{Image, RasterError};
use serde::{Deserialize, Serialize};
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
    #[error("{}: {reason}", path.display())]
    Label { path: PathBuf, reason: String },
    #[error("cancelled after {done} chip(s)")]
    Cancelled { done: usize },
}

/// A whole tiling job as the CLI and the engine describe it: where the image and its
/// companions are, and how to cut it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileRequest {
    pub input: PathBuf,
    pub spec: TileSpec,
    /// A PDS3 label of the image (same size), for chips' ground coordinates.
    pub label: Option<PathBuf>,
    /// Annotations of the image, to write a class mask per chip.
    pub labels: Option<(PathBuf, Format)>,
    /// Class map for the masks (default: the Mars classes).
    pub classes: Option<PathBuf>,
    pub out: PathBuf,
}

impl TileRequest {
    /// Reads the image, its label and annotations, and tiles it.
    pub fn run(&self, progress: &dyn Progress) -> Result<Manifest, TileError> {
        let image = Image::open(&self.input)?;
        let projection = match &self.label {
            Some(path) => Some(self.projection(path, &image)?),
            None => None,
        };
        let classes = match &self.classes {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| TileError::Io {
                    path: path.clone(),
                    source,
                })?;
                ClassMap::parse(&path.display().to_string(), &text)
                    .map_err(|e| TileError::Labels(e.to_string()))?
            }
            None => ClassMap::mars(),
        };
        let labels = match &self.labels {
            Some((path, format)) => Some(self.labels_of_image(path, *format, &classes, &image)?),
            None => None,
        };
        tile_image(
            &image,
            &self.input,
            &self.out,
            &self.spec,
            projection.as_ref(),
            labels.as_ref().map(|l| (l, &classes)),
            progress,
        )
    }

    fn projection(&self, path: &Path, image: &Image) -> Result<MapProjection, TileError> {
        let problem = |reason: String| TileError::Label {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| problem(e.to_string()))?;
        let label = crate::pds::parse(&bytes).map_err(|e| problem(e.to_string()))?;
        let lines = label.get("IMAGE.LINES").and_then(Value::as_i64);
        let samples = label.get("IMAGE.LINE_SAMPLES").and_then(Value::as_i64);
        if let (Some(lines), Some(samples)) = (lines, samples) {
            if (samples, lines) != (image.width as i64, image.height as i64) {
                return Err(problem(format!(
                    "describes a {samples} x {lines} image, {} is {} x {}: ground coordinates \
                     would be wrong",
                    self.input.display(),
                    image.width,
                    image.height
                )));
            }
        }
        MapProjection::from_label(&label)
            .ok_or_else(|| problem("has no IMAGE_MAP_PROJECTION".into()))?
            .map_err(|e| problem(e.to_string()))
    }

    /// The annotations of this image from `path` (a file may label several images).
    fn labels_of_image(
        &self,
        path: &Path,
        format: Format,
        classes: &ClassMap,
        image: &Image,
    ) -> Result<ImageLabels, TileError> {
        let options = ReadOptions {
            classes: Some(classes.clone()),
            ..ReadOptions::default()
        };
        let mut images =
            read_file(format, path, &options).map_err(|e| TileError::Labels(e.to_string()))?;
        let name = self
            .input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut labels = match images.iter().position(|l| {
            Path::new(&l.image)
                .file_name()
                .is_some_and(|n| n.to_string_lossy() == name)
        }) {
            Some(i) => images.swap_remove(i),
            None if images.len() == 1 => images.remove(0),
            None => {
                return Err(TileError::Labels(format!(
                    "{} labels several images, none named {name}",
                    path.display()
                )))
            }
        };
        labels.size = Some(ImageSize {
            width: image.width,
            height: image.height,
            depth: image.bands,
        });
        Ok(labels)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    progress: &dyn Progress,
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
    let chips = tile(image, spec)?;
    progress.start("chips", chips.len() as u64);
    for chip in chips {
        if progress.cancelled() {
            return Err(TileError::Cancelled {
                done: manifest.chips.len(),
            });
        }
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
        progress.advance(1);
    }
    progress.finish();
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    let path = out.join("manifest.json");
    crate::fsio::write_atomically(&path, text.as_bytes()).map_err(io(&path))?;
    Ok(manifest)
}
