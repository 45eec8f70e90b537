//! Tiling an image into chips on disk: PNG chips, optional per-chip class masks and boxes from
//! the image's labels (one tile set serves segmentation and detection), and a `manifest.json`
//! that says where each chip came from (pixels, and projected metres when a PDS label gives
//! the map projection).

use super::labels::{class_map, labels_of_image, Format};
use super::source::{open_rows, SampleValues};
use crate::labels::{rasterize, ClassMap, ImageLabels, ImageSize};
use crate::pds::{MapProjection, Value};
use crate::progress::Progress;
use crate::raster::rows::RowSource;
use crate::raster::tile::{chip_count, stitch, stitch_nearest, tile_rows, Chip, TileSpec};
use crate::raster::{BitDepth, Image, RasterError};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
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
    /// Circles (craters) painted at this fraction of their radius.
    #[serde(default)]
    pub circle_scale: Option<f64>,
    /// A chip's boxes hold the objects with at least this fraction of their box inside it
    /// (default [`MIN_VISIBLE`]); the rest are too cut to be fair detection targets.
    #[serde(default)]
    pub min_visible: Option<f64>,
    pub out: PathBuf,
}

/// The share of an object's box that must lie in a chip for the chip's boxes to hold it:
/// half, as detection augmentation commonly keeps (a crater cut through its middle still
/// shows its rim; a sliver at the edge does not).
pub const MIN_VISIBLE: f64 = 0.5;

impl TileRequest {
    /// Reads the image, its label and annotations, and tiles it.
    pub fn run(&self, progress: &dyn Progress) -> Result<Manifest, TileError> {
        let mut source = open_rows(&self.input)?;
        let own_label = source.label.take();
        let values = source.values;
        let rows = source.rows();
        let (width, height, bands) = (rows.width(), rows.height(), rows.bands());
        // A product's own label gives its projection unless another label is named.
        let projection = match (&self.label, &own_label) {
            (Some(path), _) => Some(self.projection(path, width, height)?),
            (None, Some(label)) => {
                MapProjection::from_label(label)
                    .transpose()
                    .map_err(|e| TileError::Label {
                        path: self.input.clone(),
                        reason: e.to_string(),
                    })?
            }
            (None, None) => None,
        };
        // Boxes come only with labels; so does the fraction that picks them.
        let min_visible = self.min_visible.filter(|_| self.labels.is_some());
        if let Some(fraction) = min_visible.filter(|f| !(0.0..=1.0).contains(f)) {
            return Err(TileError::Labels(format!(
                "--min-visible {fraction}: expected a fraction between 0 and 1"
            )));
        }
        let classes =
            class_map(self.classes.as_deref()).map_err(|e| TileError::Labels(e.to_string()))?;
        let size = ImageSize {
            width,
            height,
            depth: bands,
        };
        let labels = match &self.labels {
            Some((path, format)) => Some(self.labels_of_image(path, *format, &classes, size)?),
            None => None,
        };
        // Masks paint circles narrowed as asked; boxes keep the objects' own size.
        let targets = labels.as_ref().map(|labels| Targets {
            painted: match self.circle_scale {
                Some(factor) => Cow::Owned(labels.circles_scaled(factor)),
                None => Cow::Borrowed(labels),
            },
            boxes: ObjectBoxes::of(labels),
            classes: &classes,
            min_visible: self.min_visible.unwrap_or(MIN_VISIBLE),
        });
        let from = Provenance {
            source: &self.input,
            projection: projection.as_ref(),
            values,
        };
        tile_image(
            rows,
            &from,
            &self.out,
            &self.spec,
            targets.as_ref(),
            progress,
        )
    }

    fn projection(&self, path: &Path, width: u32, height: u32) -> Result<MapProjection, TileError> {
        let problem = |reason: String| TileError::Label {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| problem(e.to_string()))?;
        let label = crate::pds::parse(&bytes).map_err(|e| problem(e.to_string()))?;
        let lines = label.get("IMAGE.LINES").and_then(Value::as_i64);
        let samples = label.get("IMAGE.LINE_SAMPLES").and_then(Value::as_i64);
        if let (Some(lines), Some(samples)) = (lines, samples) {
            if (samples, lines) != (width as i64, height as i64) {
                return Err(problem(format!(
                    "describes a {samples} x {lines} image, {} is {} x {}: ground coordinates \
                     would be wrong",
                    self.input.display(),
                    width,
                    height
                )));
            }
        }
        MapProjection::from_label(&label)
            .ok_or_else(|| problem("has no IMAGE_MAP_PROJECTION".into()))?
            .map_err(|e| problem(e.to_string()))
    }

    /// The annotations of this image from `path`, at its size.
    fn labels_of_image(
        &self,
        path: &Path,
        format: Format,
        classes: &ClassMap,
        size: ImageSize,
    ) -> Result<ImageLabels, TileError> {
        labels_of_image(path, format, classes, &self.input, size)
            .map_err(|e| TileError::Labels(e.to_string()))
    }
}

/// What a chip's labels are made from.
struct Targets<'a> {
    /// The labels its mask paints (circles narrowed when asked).
    painted: Cow<'a, ImageLabels>,
    /// The boxes of the image's objects, which each chip's boxes are cut from.
    boxes: ObjectBoxes,
    classes: &'a ClassMap,
    min_visible: f64,
}

/// Every object's box in the whole image (a crater as the box around its circle, the parts of
/// one object together), worked out once for all the chips.
struct ObjectBoxes {
    image: String,
    /// Class and `[x0, y0, x1, y1]`, in the order of the labels' instances.
    boxes: Vec<(String, [f64; 4])>,
}

impl ObjectBoxes {
    fn of(labels: &ImageLabels) -> Self {
        ObjectBoxes {
            image: labels.image.clone(),
            boxes: labels
                .instances()
                .iter()
                .map(|instance| (instance.class.to_string(), instance.bbox()))
                .collect(),
        }
    }
}

/// One object of a chip, as a detector trains on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChipBox {
    pub class: String,
    /// The class's id in the tile set's class map.
    pub id: usize,
    /// `[x0, y0, x1, y1]` in the chip's pixels (positions from its corner), cut at its edges.
    pub bbox: [f64; 4],
    /// The share of the object's box inside the chip (1: whole).
    pub visible: f64,
}

/// The objects whose box lies at least `min_visible` inside the window `x, y, size`: their
/// boxes cut at its edges, in its pixels.
fn boxes_in_window(
    objects: &ObjectBoxes,
    classes: &ClassMap,
    (x, y, size): (u32, u32, u32),
    min_visible: f64,
) -> Result<Vec<ChipBox>, TileError> {
    let (left, top) = (x as f64, y as f64);
    let (right, bottom) = (left + size as f64, top + size as f64);
    let mut boxes = Vec::new();
    for (index, (class, bbox)) in objects.boxes.iter().enumerate() {
        let [x0, y0, x1, y1] = *bbox;
        let cut = [x0.max(left), y0.max(top), x1.min(right), y1.min(bottom)];
        if cut[0] > cut[2] || cut[1] > cut[3] {
            continue;
        }
        let area = (x1 - x0) * (y1 - y0);
        let visible = if area > 0.0 {
            (cut[2] - cut[0]) * (cut[3] - cut[1]) / area
        } else {
            1.0
        };
        if visible < min_visible || (area > 0.0 && visible == 0.0) {
            continue;
        }
        let id = classes.resolve(class).ok_or_else(|| {
            TileError::Labels(format!(
                "{}: object {}: unknown class {class:?}",
                objects.image,
                index + 1,
            ))
        })?;
        boxes.push(ChipBox {
            class: class.clone(),
            id,
            bbox: [cut[0] - left, cut[1] - top, cut[2] - left, cut[3] - top],
            visible,
        });
    }
    Ok(boxes)
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
    /// The chip's objects as boxes, when labels were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boxes: Option<Vec<ChipBox>>,
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
    /// What the samples mean, for a PDS product: `physical = sample * scale + offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<SampleValues>,
    pub chips: Vec<ChipEntry>,
}

impl Manifest {
    /// `dir/manifest.json`, as `tile_image` wrote it.
    pub fn read(dir: &Path) -> Result<Self, TileError> {
        let path = dir.join("manifest.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) => return Err(TileError::Io { path, source }),
        };
        serde_json::from_str(&text).map_err(|e| TileError::Label {
            path,
            reason: format!("not a tile manifest: {e}"),
        })
    }
}

/// What of a tile set is put back together.
#[derive(Debug, Clone, PartialEq)]
pub enum StitchInput {
    /// The chips: overlaps averaged.
    Chips,
    /// The chips' class masks: each pixel from the chip whose centre is nearest.
    Masks,
    /// Per-chip class predictions in this folder, named as the chips: as masks.
    Predictions(PathBuf),
}

/// The source-sized image that the tile set in `tiles` (its `manifest.json`) and `input` give.
pub fn stitch_tiles(tiles: &Path, input: &StitchInput) -> Result<Image, TileError> {
    let manifest = Manifest::read(tiles)?;
    let manifest_path = tiles.join("manifest.json");
    let mut chips = Vec::with_capacity(manifest.chips.len());
    for entry in &manifest.chips {
        let name = match input {
            StitchInput::Chips | StitchInput::Predictions(_) => &entry.file,
            StitchInput::Masks => entry.mask.as_ref().ok_or_else(|| TileError::Label {
                path: manifest_path.clone(),
                reason: "has chips without masks: tile with --labels to stitch masks".into(),
            })?,
        };
        // Names come from a file: only plain names inside the folder are followed.
        if Path::new(name).file_name() != Some(std::ffi::OsStr::new(name)) {
            return Err(TileError::Label {
                path: manifest_path,
                reason: format!("chip file {name:?} is not a plain file name"),
            });
        }
        let path = match input {
            StitchInput::Predictions(dir) => dir.join(name),
            _ => tiles.join(name),
        };
        let image = Image::open(&path)?;
        let [x, y, width, height] = entry.pixels;
        if (image.width, image.height) != (width, height) {
            return Err(TileError::Label {
                path,
                reason: format!(
                    "is {} x {}, the manifest's chip {width} x {height}",
                    image.width, image.height
                ),
            });
        }
        chips.push(Chip { x, y, image });
    }
    let (width, height) = (manifest.width, manifest.height);
    Ok(match input {
        StitchInput::Chips => {
            let depth = chips.first().map_or(BitDepth::Eight, |c| c.image.depth);
            stitch(&chips, width, height, manifest.bands, depth)
        }
        StitchInput::Masks | StitchInput::Predictions(_) => {
            stitch_nearest(&chips, width, height, BitDepth::Eight)
        }
    })
}

/// Where a tile set's pixels come from, as its manifest records it.
struct Provenance<'a> {
    /// The image file (it names the chips).
    source: &'a Path,
    projection: Option<&'a MapProjection>,
    values: Option<SampleValues>,
}

/// Cuts the image read from `rows` (described by `from`) into chips under `out`, strip by strip, and writes `out/manifest.json` last.
///
/// Chips are written without an fsync each; the output folder's file system is synced
/// once before the manifest is written, so a manifest on disk always lists whole chips.
fn tile_image(
    rows: &mut dyn RowSource,
    from: &Provenance,
    out: &Path,
    spec: &TileSpec,
    targets: Option<&Targets>,
    progress: &dyn Progress,
) -> Result<Manifest, TileError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TileError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let (source, projection) = (from.source, from.projection);
    let stem = source
        .file_stem()
        .map_or_else(|| "image".to_string(), |s| s.to_string_lossy().into_owned());
    let mut manifest = Manifest {
        source: source.to_path_buf(),
        width: rows.width(),
        height: rows.height(),
        bands: rows.bands(),
        bit_depth: rows.depth().max().log2().ceil() as u32,
        size: spec.size,
        stride: spec.stride,
        projection: projection.map(|p| p.projection.clone()),
        values: from.values,
        chips: Vec::new(),
    };
    progress.start(
        "chips",
        chip_count(rows.width(), rows.height(), spec) as u64,
    );
    tile_rows(rows, spec, |chip| {
        if progress.cancelled() {
            return Err(TileError::Cancelled {
                done: manifest.chips.len(),
            });
        }
        let file = format!("{stem}_{}_{}.png", chip.x, chip.y);
        let path = out.join(&file);
        std::fs::write(&path, chip.image.encode_png()?).map_err(io(&path))?;
        let ground = projection.map(|p| {
            let (west, north) = p.pixel_to_map(chip.x as f64, chip.y as f64);
            let (east, south) =
                p.pixel_to_map((chip.x + spec.size) as f64, (chip.y + spec.size) as f64);
            [west, north, east, south]
        });
        let (mask, objects, boxes) = match targets {
            Some(targets) => {
                let (window, _) = targets
                    .painted
                    .cropped(chip.x, chip.y, spec.size, spec.size, &file);
                let raster = rasterize::semantic(&window, targets.classes)
                    .map_err(|e| TileError::Labels(e.to_string()))?;
                let mask_file = format!("{stem}_{}_{}.mask.png", chip.x, chip.y);
                let mut mask = Image::new(raster.width, raster.height, 1, BitDepth::Eight);
                mask.data = raster.pixels.iter().map(|v| *v as f32).collect();
                let mask_path = out.join(&mask_file);
                std::fs::write(&mask_path, mask.encode_png()?).map_err(io(&mask_path))?;
                let boxes = boxes_in_window(
                    &targets.boxes,
                    targets.classes,
                    (chip.x, chip.y, spec.size),
                    targets.min_visible,
                )?;
                (Some(mask_file), Some(window.objects.len()), Some(boxes))
            }
            None => (None, None, None),
        };
        manifest.chips.push(ChipEntry {
            file,
            mask,
            pixels: [chip.x, chip.y, spec.size, spec.size],
            ground,
            objects,
            boxes,
        });
        progress.advance(1);
        Ok(())
    })?;
    progress.finish();
    crate::fsio::sync_file_system(out).map_err(io(out))?;
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    let path = out.join("manifest.json");
    crate::fsio::write_atomically(&path, text.as_bytes()).map_err(io(&path))?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Object, Shape};

    fn crater_at(cx: f64, cy: f64, r: f64) -> ImageLabels {
        let mut labels = ImageLabels::new(
            "scene.png",
            Some(ImageSize {
                width: 64,
                height: 64,
                depth: 1,
            }),
        );
        labels
            .objects
            .push(Object::new("crater", Shape::Circle { cx, cy, r }));
        labels
    }

    /// A crater of radius 4 at (10, 10) is the box 6..14 x 6..14: whole in the first chip,
    /// three quarters in a chip from x = 8, a quarter in one from x = 12.
    #[test]
    fn chip_boxes_are_cut_at_the_edge_and_mostly_cut_objects_left_out() {
        let objects = ObjectBoxes::of(&crater_at(10.0, 10.0, 4.0));
        let classes = ClassMap::mars();
        let boxes =
            |x, min_visible| boxes_in_window(&objects, &classes, (x, 0, 16), min_visible).unwrap();
        assert_eq!(
            boxes(0, 0.5),
            [ChipBox {
                class: "crater".into(),
                id: 1,
                bbox: [6.0, 6.0, 14.0, 14.0],
                visible: 1.0
            }]
        );
        let three_quarters = boxes(8, 0.5);
        assert_eq!(three_quarters[0].bbox, [0.0, 6.0, 6.0, 14.0]);
        assert_eq!(three_quarters[0].visible, 0.75);
        assert!(boxes(12, 0.5).is_empty(), "a quarter is too cut");
        assert_eq!(boxes(12, 0.2)[0].visible, 0.25);
        assert!(boxes(14, 0.0).is_empty(), "touching the edge is not inside");
    }

    #[test]
    fn a_multi_part_object_is_one_box_and_an_unknown_class_is_named() {
        let mut labels = crater_at(0.0, 0.0, 0.0);
        labels.objects.clear();
        for x in [2.0, 20.0] {
            let mut part = Object::new(
                "dark dune",
                Shape::Polygon(vec![[x, 2.0], [x + 4.0, 2.0], [x, 6.0]]),
            );
            part.group = Some(7);
            part.recorded_box = Some([1.5, 2.0, 24.5, 6.0]);
            labels.objects.push(part);
        }
        let objects = ObjectBoxes::of(&labels);
        let boxes = boxes_in_window(&objects, &ClassMap::mars(), (0, 0, 32), 0.5).unwrap();
        assert_eq!(boxes.len(), 1);
        assert_eq!((boxes[0].id, boxes[0].bbox), (2, [1.5, 2.0, 24.5, 6.0]));
        labels.objects[0].class = "volcano".into();
        let objects = ObjectBoxes::of(&labels);
        let error = boxes_in_window(&objects, &ClassMap::mars(), (0, 0, 32), 0.5).unwrap_err();
        assert_eq!(
            error.to_string(),
            "scene.png: object 1: unknown class \"volcano\""
        );
    }
}
