//! Datasets: tile sets (chips with masks) split into training, validation and test chips by
//! area of the source image, so neighbouring, overlapping chips never sit on both sides of
//! a split; class frequencies per split; samples loaded for training.

use super::tile::{ChipBox, Manifest};
use crate::fsio::write_atomically;
use crate::nn::data::{ClassBox, Sample};
use crate::product::check_plain_name;
use crate::raster::Image;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

fn file_error(path: &Path, reason: impl ToString) -> DatasetError {
    DatasetError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A dataset as lists show it: its name, its tile sets and its chips per split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub name: String,
    pub created: String,
    pub train: usize,
    pub validation: usize,
    pub test: usize,
    pub tile_sets: Vec<PathBuf>,
}

/// The datasets in `datasets_dir`, by name; a record that cannot be read is named in the error.
pub fn list_datasets(datasets_dir: &Path) -> Result<Vec<DatasetSummary>, DatasetError> {
    let entries = match std::fs::read_dir(datasets_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file_error(datasets_dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| file_error(datasets_dir, e))?.path();
        // `NAME.json.part` files are writes in progress, not datasets.
        if path.extension().is_some_and(|e| e == "json") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    names
        .iter()
        .map(|name| Ok(DatasetRecord::read(datasets_dir, name)?.summary()))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Validation,
    Test,
}

/// How chips are assigned to splits. With boxes, chips inside the validation or test box go
/// there and the rest train; without, the source is cut into `area`-sided squares and a
/// seeded draw sends whole squares to validation and test in the given fractions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitRule {
    pub seed: u64,
    pub area: u32,
    pub validation: f64,
    pub test: f64,
    /// x, y, width, height in source pixels.
    pub validation_box: Option<[u32; 4]>,
    pub test_box: Option<[u32; 4]>,
}

impl Default for SplitRule {
    fn default() -> Self {
        SplitRule {
            seed: 42,
            area: 1024,
            validation: 0.2,
            test: 0.0,
            validation_box: None,
            test_box: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetChip {
    /// Index into `tile_sets`.
    pub set: usize,
    pub file: String,
    pub mask: String,
    pub pixels: [u32; 4],
    pub split: Split,
}

/// `datasets/<name>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub name: String,
    pub created: String,
    /// Tile set folders (each with `manifest.json`), absolute.
    pub tile_sets: Vec<PathBuf>,
    /// The sources the tile sets were cut from.
    pub sources: Vec<PathBuf>,
    pub rule: SplitRule,
    pub chips: Vec<DatasetChip>,
    /// Chips left out because they straddle two splits.
    pub dropped: usize,
    /// Mask pixels per value, per split.
    pub class_pixels: BTreeMap<Split, BTreeMap<u8, u64>>,
}

impl DatasetRecord {
    pub fn path(datasets_dir: &Path, name: &str) -> PathBuf {
        datasets_dir.join(format!("{name}.json"))
    }

    pub fn read(datasets_dir: &Path, name: &str) -> Result<Self, DatasetError> {
        check_plain_name("dataset name", name).map_err(|e| DatasetError::Invalid(e.to_string()))?;
        let path = Self::path(datasets_dir, name);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DatasetError::Invalid(format!("no dataset named {name} (areo dataset create)"))
            } else {
                file_error(&path, e)
            }
        })?;
        serde_json::from_str(&text).map_err(|e| file_error(&path, e))
    }

    /// What a list of datasets shows of this one.
    pub fn summary(&self) -> DatasetSummary {
        DatasetSummary {
            name: self.name.clone(),
            created: self.created.clone(),
            train: self.count(Split::Train),
            validation: self.count(Split::Validation),
            test: self.count(Split::Test),
            tile_sets: self.tile_sets.clone(),
        }
    }

    pub fn count(&self, split: Split) -> usize {
        self.chips.iter().filter(|c| c.split == split).count()
    }

    /// The chips of a split with their masks and `boxes`' boxes, read from disk, in record
    /// order.
    pub fn samples(&self, split: Split, boxes: &DatasetBoxes) -> Result<Vec<Sample>, DatasetError> {
        self.chips
            .iter()
            .filter(|c| c.split == split)
            .map(|chip| {
                let dir = &self.tile_sets[chip.set];
                let image_path = dir.join(&chip.file);
                let image = Image::open(&image_path).map_err(|e| file_error(&image_path, e))?;
                let mask_path = dir.join(&chip.mask);
                let mask = read_mask(&mask_path)?;
                if (mask.0, mask.1) != (image.width, image.height) {
                    return Err(file_error(
                        &mask_path,
                        format!(
                            "mask is {} x {}, its chip {} x {}",
                            mask.0, mask.1, image.width, image.height
                        ),
                    ));
                }
                let scale = image.depth.max();
                Ok(Sample {
                    image: image.data.iter().map(|v| v / scale).collect(),
                    mask: mask.2,
                    boxes: boxes
                        .by_chip
                        .get(&(chip.set, chip.file.clone()))
                        .cloned()
                        .unwrap_or_default(),
                    width: image.width as usize,
                    height: image.height as usize,
                    bands: image.bands as usize,
                })
            })
            .collect()
    }

    /// The chips' boxes as their tile sets' manifests list them (each manifest read once),
    /// checked: a box must have a positive size and lie in its chip.
    pub fn boxes(&self) -> Result<DatasetBoxes, DatasetError> {
        let mut boxes = DatasetBoxes {
            by_chip: HashMap::new(),
            complete: true,
            class_names: BTreeMap::new(),
        };
        for (set, dir) in self.tile_sets.iter().enumerate() {
            let manifest = Manifest::read(dir).map_err(|e| DatasetError::Invalid(e.to_string()))?;
            let path = dir.join("manifest.json");
            boxes.complete &= manifest.chips.iter().all(|c| c.boxes.is_some());
            let listed: HashMap<&str, &Vec<ChipBox>> = manifest
                .chips
                .iter()
                .filter_map(|c| Some((c.file.as_str(), c.boxes.as_ref()?)))
                .collect();
            for b in listed.values().copied().flatten() {
                boxes
                    .class_names
                    .entry(b.id)
                    .or_insert_with(|| b.class.clone());
            }
            for chip in self.chips.iter().filter(|c| c.set == set) {
                let Some(listed) = listed.get(chip.file.as_str()) else {
                    continue;
                };
                let [_, _, width, height] = chip.pixels;
                let mut kept = Vec::with_capacity(listed.len());
                for (index, b) in listed.iter().enumerate() {
                    let [x0, y0, x1, y1] = b.bbox;
                    let inside =
                        x0 >= 0.0 && y0 >= 0.0 && x1 <= width as f64 && y1 <= height as f64;
                    if !(x0 < x1 && y0 < y1 && inside) {
                        return Err(file_error(
                            &path,
                            format!(
                                "chip {} box {} ({}) is [{x0}, {y0}, {x1}, {y1}]: a box needs \
                                 a positive size inside the {width} x {height} chip",
                                chip.file,
                                index + 1,
                                b.class
                            ),
                        ));
                    }
                    kept.push(ClassBox {
                        class: b.id,
                        bbox: b.bbox.map(|v| v as f32),
                    });
                }
                boxes.by_chip.insert((set, chip.file.clone()), kept);
            }
        }
        Ok(boxes)
    }
}

/// What a dataset's tile sets say of its chips' objects.
#[derive(Debug, Clone)]
pub struct DatasetBoxes {
    /// Each chip's boxes by (tile set, chip file); none for a chip tiled without labels.
    by_chip: HashMap<(usize, String), Vec<ClassBox>>,
    /// Every chip kept its boxes (tiled with labels since tile sets kept boxes), so the
    /// dataset can train a detector.
    pub complete: bool,
    /// The names of the class ids the boxes use.
    pub class_names: BTreeMap<usize, String>,
}

/// A class mask: 8-bit, one band.
pub fn read_mask(path: &Path) -> Result<(u32, u32, Vec<u8>), DatasetError> {
    let image = Image::open(path).map_err(|e| file_error(path, e))?;
    if image.bands != 1 || image.depth != crate::raster::BitDepth::Eight {
        return Err(file_error(path, "a class mask must be 8-bit greyscale"));
    }
    Ok((
        image.width,
        image.height,
        image.data.iter().map(|v| *v as u8).collect(),
    ))
}

/// Makes `datasets/<name>.json` from tile sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRequest {
    pub name: String,
    pub tile_sets: Vec<PathBuf>,
    pub rule: SplitRule,
    /// Replace a dataset of the same name.
    pub replace: bool,
}

impl DatasetRequest {
    pub fn run(&self, datasets_dir: &Path) -> Result<DatasetRecord, DatasetError> {
        check_plain_name("dataset name", &self.name)
            .map_err(|e| DatasetError::Invalid(e.to_string()))?;
        let path = DatasetRecord::path(datasets_dir, &self.name);
        if path.exists() && !self.replace {
            return Err(DatasetError::Invalid(format!(
                "dataset {} exists (--replace to make it again)",
                self.name
            )));
        }
        let rule = &self.rule;
        if rule.area == 0 {
            return Err(DatasetError::Invalid("split area must be positive".into()));
        }
        if !(0.0..=1.0).contains(&rule.validation)
            || !(0.0..=1.0).contains(&rule.test)
            || rule.validation + rule.test > 1.0
        {
            return Err(DatasetError::Invalid(format!(
                "validation {} and test {} must be fractions summing to at most 1",
                rule.validation, rule.test
            )));
        }
        if self.tile_sets.is_empty() {
            return Err(DatasetError::Invalid("no tile sets given".into()));
        }
        let mut manifests = Vec::new();
        let mut tile_sets = Vec::new();
        for dir in &self.tile_sets {
            let dir = std::path::absolute(dir).map_err(|e| file_error(dir, e))?;
            let manifest_path = dir.join("manifest.json");
            let manifest =
                Manifest::read(&dir).map_err(|e| DatasetError::Invalid(e.to_string()))?;
            if manifest.chips.iter().any(|c| c.mask.is_none()) {
                return Err(file_error(
                    &manifest_path,
                    "has chips without masks: tile with --labels to make training targets",
                ));
            }
            tile_sets.push(dir);
            manifests.push(manifest);
        }
        let splits = assign(&manifests, rule);
        let mut chips = Vec::new();
        let mut dropped = 0;
        let mut class_pixels: BTreeMap<Split, BTreeMap<u8, u64>> = BTreeMap::new();
        for (set, manifest) in manifests.iter().enumerate() {
            for (chip, split) in manifest.chips.iter().zip(&splits[set]) {
                let Some(split) = split else {
                    dropped += 1;
                    continue;
                };
                let mask_name = chip.mask.clone().expect("checked above");
                let (_, _, mask) = read_mask(&tile_sets[set].join(&mask_name))?;
                let counts = class_pixels.entry(*split).or_default();
                for value in mask {
                    *counts.entry(value).or_default() += 1;
                }
                chips.push(DatasetChip {
                    set,
                    file: chip.file.clone(),
                    mask: mask_name,
                    pixels: chip.pixels,
                    split: *split,
                });
            }
        }
        let record = DatasetRecord {
            name: self.name.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            sources: manifests.iter().map(|m| m.source.clone()).collect(),
            tile_sets,
            rule: rule.clone(),
            chips,
            dropped,
            class_pixels,
        };
        let bytes = serde_json::to_vec_pretty(&record).expect("a dataset serialises");
        write_atomically(&path, &bytes).map_err(|e| file_error(&path, e))?;
        Ok(record)
    }
}

/// The split of every chip of every manifest (None: it straddles two splits).
fn assign(manifests: &[Manifest], rule: &SplitRule) -> Vec<Vec<Option<Split>>> {
    let boxed = rule.validation_box.is_some() || rule.test_box.is_some();
    // Squares of the grid per tile set, shuffled once with the seed.
    let mut squares: Vec<(usize, u32, u32)> = Vec::new();
    for (set, m) in manifests.iter().enumerate() {
        for sy in 0..m.height.div_ceil(rule.area) {
            for sx in 0..m.width.div_ceil(rule.area) {
                squares.push((set, sx, sy));
            }
        }
    }
    fastrand::Rng::with_seed(rule.seed).shuffle(&mut squares);
    let validation = (squares.len() as f64 * rule.validation).round() as usize;
    let test = (squares.len() as f64 * rule.test).round() as usize;
    let square_split: HashMap<(usize, u32, u32), Split> = squares
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let split = if i < validation {
                Split::Validation
            } else if i < validation + test {
                Split::Test
            } else {
                Split::Train
            };
            (*key, split)
        })
        .collect();
    manifests
        .iter()
        .enumerate()
        .map(|(set, m)| {
            m.chips
                .iter()
                .map(|chip| {
                    let [x, y, w, h] = chip.pixels;
                    if boxed {
                        let mut inside = None;
                        for (b, split) in [
                            (rule.validation_box, Split::Validation),
                            (rule.test_box, Split::Test),
                        ] {
                            let Some(b) = b else { continue };
                            match overlap([x, y, w, h], b) {
                                Overlap::Inside => inside = Some(split),
                                Overlap::Partly => return None,
                                Overlap::Outside => {}
                            }
                        }
                        Some(inside.unwrap_or(Split::Train))
                    } else {
                        let (x1, y1) = ((x + w - 1) / rule.area, (y + h - 1) / rule.area);
                        let first = square_split[&(set, x / rule.area, y / rule.area)];
                        for sy in y / rule.area..=y1.min(m.height.div_ceil(rule.area) - 1) {
                            for sx in x / rule.area..=x1.min(m.width.div_ceil(rule.area) - 1) {
                                if square_split[&(set, sx, sy)] != first {
                                    return None;
                                }
                            }
                        }
                        Some(first)
                    }
                })
                .collect()
        })
        .collect()
}

enum Overlap {
    Inside,
    Partly,
    Outside,
}

fn overlap(chip: [u32; 4], area: [u32; 4]) -> Overlap {
    let [x, y, w, h] = chip;
    let [ax, ay, aw, ah] = area;
    let (ix0, iy0) = (x.max(ax), y.max(ay));
    let (ix1, iy1) = ((x + w).min(ax + aw), (y + h).min(ay + ah));
    if ix0 >= ix1 || iy0 >= iy1 {
        Overlap::Outside
    } else if (ix0, iy0, ix1, iy1) == (x, y, x + w, y + h) {
        Overlap::Inside
    } else {
        Overlap::Partly
    }
}
