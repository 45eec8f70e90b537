//! Model and training configurations, read from `models/*.toml`.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One configuration file: the network and how to train it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub name: String,
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
}

/// The network: which family (`kind`, `unet` when left out, so configurations written before
/// the zoo read as they always did) and that family's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelConfig {
    #[serde(rename = "unet")]
    UNet(UNetConfig),
    Ssd(SsdConfig),
}

impl<'de> Deserialize<'de> for ModelConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        use serde_json::Value;
        // serde's tagged enums have no default tag: the table is read whole, its `kind`
        // taken out, and the rest read as that family's (unknown keys refused there).
        let mut table = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        let kind = match table.remove("kind") {
            None => "unet".to_string(),
            Some(Value::String(kind)) => kind,
            Some(other) => return Err(D::Error::custom(format!("kind is {other}: a name"))),
        };
        let table = Value::Object(table);
        match kind.as_str() {
            "unet" => serde_json::from_value(table).map(ModelConfig::UNet),
            "ssd" => serde_json::from_value(table).map(ModelConfig::Ssd),
            other => {
                return Err(D::Error::custom(format!(
                    "unknown model kind {other:?} (unet or ssd)"
                )))
            }
        }
        .map_err(|e| D::Error::custom(format!("[model] kind = {kind:?}: {e}")))
    }
}

impl ModelConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ModelConfig::UNet(_) => "unet",
            ModelConfig::Ssd(_) => "ssd",
        }
    }

    /// Number of classes, background included.
    pub fn classes(&self) -> usize {
        match self {
            ModelConfig::UNet(c) => c.classes,
            ModelConfig::Ssd(c) => c.classes,
        }
    }

    /// Bands the network takes (1 or 3).
    pub fn in_channels(&self) -> usize {
        match self {
            ModelConfig::UNet(c) => c.in_channels,
            ModelConfig::Ssd(c) => c.in_channels,
        }
    }

    /// The ResNet backbone's blocks per stage and widths (stem, four stages).
    pub fn backbone(&self) -> Result<([usize; 4], [usize; 5]), String> {
        match self {
            ModelConfig::UNet(c) => c.shape(),
            ModelConfig::Ssd(c) => c.shape(),
        }
    }

    fn check(&self, tile: u32) -> Result<(), String> {
        self.backbone()?;
        if !matches!(self.in_channels(), 1 | 3) {
            return Err(format!("in_channels is {}: 1 or 3", self.in_channels()));
        }
        if self.classes() < 2 {
            return Err(format!(
                "classes is {}: at least 2 (background and one class)",
                self.classes()
            ));
        }
        match self {
            ModelConfig::UNet(c) => c.check(),
            ModelConfig::Ssd(c) => c.check(tile),
        }
    }
}

/// Blocks per stage and widths (stem, four stages) of a ResNet named `encoder`: `resnet18` and
/// `resnet34` are torchvision's shapes (stem 64, widths 64/128/256/512, blocks 2/2/2/2 or
/// 3/4/6/3); `resnet` takes its blocks (and optionally widths) from the configuration.
fn resnet_shape(
    encoder: &str,
    blocks: Option<[usize; 4]>,
    widths: Option<[usize; 5]>,
) -> Result<([usize; 4], [usize; 5]), String> {
    let preset = match encoder {
        "resnet18" => Some([2, 2, 2, 2]),
        "resnet34" => Some([3, 4, 6, 3]),
        "resnet" => None,
        other => {
            return Err(format!(
                "unknown encoder {other:?} (resnet18, resnet34 or resnet)"
            ))
        }
    };
    let blocks = match (preset, blocks) {
        (Some(preset), None) => preset,
        (Some(_), Some(_)) => return Err(format!("{encoder} fixes its blocks; remove `blocks`")),
        (None, Some(blocks)) => blocks,
        (None, None) => return Err("encoder \"resnet\" needs `blocks`".into()),
    };
    let widths = widths.unwrap_or([64, 64, 128, 256, 512]);
    if blocks.contains(&0) || widths.contains(&0) {
        return Err("blocks and widths must be positive".into());
    }
    Ok((blocks, widths))
}

/// A U-Net over a ResNet encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// `resnet18`, `resnet34`, or `resnet` with `blocks` and `widths`.
    pub encoder: String,
    #[serde(default)]
    pub blocks: Option<[usize; 4]>,
    /// Channels of the stem and of the four stages.
    #[serde(default)]
    pub widths: Option<[usize; 5]>,
    /// Channels of the five decoder blocks, deepest first.
    #[serde(default = "default_decoder")]
    pub decoder: [usize; 5],
    /// 1 (greyscale) or 3; a greyscale chip is repeated into 3 bands for a 3-band model.
    pub in_channels: usize,
    /// Number of classes, background included.
    pub classes: usize,
    /// Also join the input image to the last, full-resolution decoder block (fastai's
    /// `last_cross`): the finest skip is otherwise at stride 2, coarse for craters a few
    /// pixels across.
    #[serde(default)]
    pub input_skip: bool,
}

fn default_decoder() -> [usize; 5] {
    [256, 128, 64, 32, 16]
}

impl UNetConfig {
    /// Blocks per stage and widths (stem, four stages), after the named presets.
    pub fn shape(&self) -> Result<([usize; 4], [usize; 5]), String> {
        resnet_shape(&self.encoder, self.blocks, self.widths)
    }

    fn check(&self) -> Result<(), String> {
        if self.decoder.contains(&0) {
            return Err("decoder channels must be positive".into());
        }
        Ok(())
    }
}

/// An SSD detector: heads on several of the ResNet's maps, each predicting, for every anchor
/// of every cell, a score per class (sigmoid, background left implicit, as fastai's and
/// RetinaNet's focal loss has it) and the anchor's box offsets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsdConfig {
    /// `resnet18`, `resnet34`, or `resnet` with `blocks` and `widths`.
    pub encoder: String,
    #[serde(default)]
    pub blocks: Option<[usize; 4]>,
    #[serde(default)]
    pub widths: Option<[usize; 5]>,
    /// 1 (greyscale) or 3.
    pub in_channels: usize,
    /// Number of classes, background included (class ids as the tile set's class map).
    pub classes: usize,
    /// Cells per side of the training tile, one head each: `train.tile / grid` must be a
    /// stride of a backbone map (2, 4, 8, 16 or 32). fastai's SSD had grids 4, 2, 1 at
    /// 224 px; small craters need finer ones.
    pub grids: Vec<u32>,
    /// Anchor sides as multiples of their cell's side.
    #[serde(default = "one")]
    pub zooms: Vec<f64>,
    /// Anchor shapes as width / height.
    #[serde(default = "one")]
    pub ratios: Vec<f64>,
    /// Channels of each head's hidden 3x3 convolution.
    #[serde(default = "default_head")]
    pub head: usize,
    /// Focal loss: the weight of a positive (alpha) and the focusing power (gamma, 0 or at
    /// least 1: 0 is plain binary cross-entropy).
    #[serde(default = "default_alpha")]
    pub focal_alpha: f64,
    #[serde(default = "default_gamma")]
    pub focal_gamma: f64,
    /// Weight of the box (L1) loss beside the class loss.
    #[serde(default = "default_box_weight")]
    pub box_weight: f64,
    /// An anchor overlapping an object by at least this IoU learns it; below
    /// `background_iou` it learns background; between, nothing. Every object also keeps its
    /// best anchor.
    #[serde(default = "default_match_iou")]
    pub match_iou: f64,
    #[serde(default = "default_background_iou")]
    pub background_iou: f64,
    /// Inference: the least score kept, the IoU above which non-maximum suppression drops
    /// the lower-scoring box of a class, and the most boxes per chip.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    #[serde(default = "default_nms_iou")]
    pub nms_iou: f64,
    #[serde(default = "default_max_detections")]
    pub max_detections: usize,
}

fn one() -> Vec<f64> {
    vec![1.0]
}
fn default_head() -> usize {
    64
}
fn default_alpha() -> f64 {
    0.25
}
fn default_gamma() -> f64 {
    1.0
}
fn default_box_weight() -> f64 {
    1.0
}
fn default_match_iou() -> f64 {
    0.5
}
fn default_background_iou() -> f64 {
    0.4
}
fn default_min_score() -> f64 {
    0.05
}
fn default_nms_iou() -> f64 {
    0.5
}
fn default_max_detections() -> usize {
    100
}

/// The strides of the backbone's maps: the stem's, then the four stages'.
pub const BACKBONE_STRIDES: [u32; 5] = [2, 4, 8, 16, 32];

impl SsdConfig {
    /// Blocks per stage and widths (stem, four stages), after the named presets.
    pub fn shape(&self) -> Result<([usize; 4], [usize; 5]), String> {
        resnet_shape(&self.encoder, self.blocks, self.widths)
    }

    /// The stride of each head's map for chips of `tile` pixels (checked by `check`).
    pub fn strides(&self, tile: u32) -> Vec<u32> {
        self.grids.iter().map(|grid| tile / grid).collect()
    }

    fn check(&self, tile: u32) -> Result<(), String> {
        if self.grids.is_empty() {
            return Err("grids is empty: at least one head".into());
        }
        for (i, &grid) in self.grids.iter().enumerate() {
            if grid == 0 || !tile.is_multiple_of(grid) {
                return Err(format!(
                    "grids[{i}] is {grid}: it must divide train.tile {tile}"
                ));
            }
            if !BACKBONE_STRIDES.contains(&(tile / grid)) {
                return Err(format!(
                    "grids[{i}] is {grid}: {tile} / {grid} = {} px cells, but the backbone's \
                     maps are at strides 2, 4, 8, 16 and 32",
                    tile / grid
                ));
            }
            if self.grids[..i].contains(&grid) {
                return Err(format!("grids[{i}] {grid} appears twice"));
            }
        }
        let positive = |name: &str, values: &[f64]| -> Result<(), String> {
            if values.is_empty() || values.iter().any(|v| !(*v > 0.0 && v.is_finite())) {
                return Err(format!("{name} must be positive numbers (at least one)"));
            }
            Ok(())
        };
        positive("zooms", &self.zooms)?;
        positive("ratios", &self.ratios)?;
        if self.head == 0 || self.max_detections == 0 {
            return Err("head and max_detections must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.focal_alpha) {
            return Err(format!("focal_alpha is {}: in [0, 1]", self.focal_alpha));
        }
        // The modulating factor's gradient, gamma (1 - p)^(gamma - 1), is infinite where a
        // confident anchor has 1 - p = 0 if gamma is below 1.
        if !(self.focal_gamma == 0.0 || (self.focal_gamma >= 1.0 && self.focal_gamma.is_finite())) {
            return Err(format!(
                "focal_gamma is {}: 0, or at least 1",
                self.focal_gamma
            ));
        }
        if !(self.box_weight >= 0.0 && self.box_weight.is_finite()) {
            return Err(format!("box_weight is {}: not negative", self.box_weight));
        }
        let unit = |name: &str, v: f64| -> Result<(), String> {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} is {v}: in [0, 1]"));
            }
            Ok(())
        };
        unit("match_iou", self.match_iou)?;
        unit("background_iou", self.background_iou)?;
        unit("min_score", self.min_score)?;
        unit("nms_iou", self.nms_iou)?;
        if self.background_iou > self.match_iou {
            return Err(format!(
                "background_iou {} is above match_iou {}",
                self.background_iou, self.match_iou
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    CrossEntropy,
    Dice,
    /// Cross-entropy plus Dice, fastai's and smp's usual pairing for unbalanced masks.
    CrossEntropyDice,
}

/// fastai's recipe by default: one-cycle AdamW, frozen-encoder epochs, then the whole
/// network with a lower encoder learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Side of the square crops the network trains on (a multiple of 32).
    pub tile: u32,
    pub batch: usize,
    pub epochs: usize,
    /// Epochs at the start with the encoder frozen (only useful with pretrained weights).
    pub freeze_epochs: usize,
    /// Peak learning rate of the one-cycle schedule.
    pub lr: f64,
    /// The encoder's learning rate as a fraction of `lr` once unfrozen.
    pub encoder_lr_factor: f64,
    pub weight_decay: f64,
    /// Fraction of the steps spent warming up to the peak.
    pub pct_start: f64,
    pub loss: LossKind,
    /// Weight per class for the cross-entropy (default: all 1).
    pub class_weights: Option<Vec<f32>>,
    /// Mask value that marks pixels to leave out of the loss and the scores.
    pub ignore_index: Option<u8>,
    pub seed: u64,
    /// Write a checkpoint every this many steps as well as after every epoch (0: epochs only).
    pub checkpoint_every: usize,
    /// The weights inference takes unless told otherwise (a run keeps both).
    pub keep: KeptWeights,
    pub augment: Augment,
}

/// A run's two sets of weights: its checkpoint's (those it ended with once finished; while it
/// trains, or after a stop, the latest saved), and those of its epoch with the best validation
/// score.
///
/// `last` by default, as fastai's one-cycle training keeps: the schedule anneals the learning
/// rate to zero so that the final weights are the settled ones, while the best-scoring epoch is
/// often one still at a high learning rate that a small validation area happened to favour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeptWeights {
    #[default]
    Last,
    Best,
}

impl KeptWeights {
    /// The weights' file in the run's folder (inference ignores the checkpoint's optimiser
    /// moments).
    pub fn file_name(self) -> &'static str {
        match self {
            KeptWeights::Last => "checkpoint.safetensors",
            KeptWeights::Best => "best.safetensors",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "last" => Ok(KeptWeights::Last),
            "best" => Ok(KeptWeights::Best),
            other => Err(format!("weights {other:?}: \"last\" or \"best\"")),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            tile: 256,
            batch: 8,
            epochs: 20,
            freeze_epochs: 0,
            lr: 1e-3,
            encoder_lr_factor: 0.1,
            weight_decay: 0.01,
            pct_start: 0.25,
            loss: LossKind::CrossEntropy,
            class_weights: None,
            ignore_index: Some(255),
            seed: 42,
            checkpoint_every: 0,
            keep: KeptWeights::Last,
            augment: Augment::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    /// Mirrorings drawn at random; inference's test-time flips use the same ones.
    pub flips: Flips,
    /// Quarter turns (square crops only).
    pub rot90: bool,
    /// Largest brightness shift, as a fraction of the full range.
    pub brightness: f32,
    /// Largest contrast change, as a fraction (0.2: x0.8 to x1.2 about the mean).
    pub contrast: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            flips: Flips::Both,
            rot90: true,
            brightness: 0.1,
            contrast: 0.1,
        }
    }
}

/// Which mirrorings augment the training chips. Orbital images of one scene share a sun
/// direction, and a crater's shading (shadowed near wall, lit far wall) says which way is
/// down-sun: mirroring across the sun's direction turns a crater into what looks like a
/// mound, so a scene lit from the left or right keeps only `vertical` (and no quarter turns).
/// `true` and `false` read as `both` and `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", from = "FlipsSetting")]
pub enum Flips {
    None,
    /// Left to right.
    Horizontal,
    /// Top to bottom.
    Vertical,
    Both,
}

impl Flips {
    pub fn horizontal(self) -> bool {
        matches!(self, Flips::Horizontal | Flips::Both)
    }

    pub fn vertical(self) -> bool {
        matches!(self, Flips::Vertical | Flips::Both)
    }
}

/// What a configuration may write for [`Flips`]: a name, or a switch for all or none.
#[derive(Deserialize)]
#[serde(untagged)]
enum FlipsSetting {
    All(bool),
    Axes(FlipAxes),
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum FlipAxes {
    None,
    Horizontal,
    Vertical,
    Both,
}

impl From<FlipsSetting> for Flips {
    fn from(setting: FlipsSetting) -> Self {
        match setting {
            FlipsSetting::All(true) | FlipsSetting::Axes(FlipAxes::Both) => Flips::Both,
            FlipsSetting::All(false) | FlipsSetting::Axes(FlipAxes::None) => Flips::None,
            FlipsSetting::Axes(FlipAxes::Horizontal) => Flips::Horizontal,
            FlipsSetting::Axes(FlipAxes::Vertical) => Flips::Vertical,
        }
    }
}

impl RunConfig {
    pub fn parse(source: &str, text: &str) -> Result<Self, String> {
        let config: RunConfig =
            toml::from_str(text).map_err(|e| format!("{source}: {}", e.to_string().trim()))?;
        config.check().map_err(|e| format!("{source}: {e}"))?;
        Ok(config)
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn check(&self) -> Result<(), String> {
        let train = &self.train;
        if train.tile == 0 || !train.tile.is_multiple_of(32) {
            return Err(format!(
                "train.tile is {}: a positive multiple of 32",
                train.tile
            ));
        }
        self.model.check(train.tile)?;
        if train.batch == 0 || train.epochs == 0 {
            return Err("train.batch and train.epochs must be positive".into());
        }
        if train.freeze_epochs > train.epochs {
            return Err("train.freeze_epochs exceeds train.epochs".into());
        }
        if !(train.lr > 0.0 && train.lr.is_finite()) {
            return Err(format!("train.lr is {}: positive", train.lr));
        }
        if !(0.0..1.0).contains(&train.pct_start) {
            return Err(format!("train.pct_start is {}: in [0, 1)", train.pct_start));
        }
        if let (ModelConfig::Ssd(_), Some(_)) = (&self.model, &train.class_weights) {
            return Err(
                "train.class_weights weighs a segmentation loss: an SSD has \
                        focal_alpha under [model]"
                    .into(),
            );
        }
        if let Some(weights) = &train.class_weights {
            if weights.len() != self.model.classes() {
                return Err(format!(
                    "train.class_weights has {} values for {} classes",
                    weights.len(),
                    self.model.classes()
                ));
            }
            if weights.iter().any(|w| !(*w >= 0.0 && w.is_finite())) {
                return Err("train.class_weights must be finite and not negative".into());
            }
        }
        if let Some(ignore) = train.ignore_index {
            if (ignore as usize) < self.model.classes() {
                return Err(format!(
                    "train.ignore_index {ignore} is one of the {} classes",
                    self.model.classes()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"
name = "t"
[model]
encoder = "resnet"
blocks = [1, 1, 1, 1]
widths = [8, 8, 16, 32, 64]
decoder = [32, 16, 16, 8, 8]
in_channels = 1
classes = 2
[train]
tile = 64
"#;

    #[test]
    fn a_config_reads_with_defaults_for_what_it_leaves_out() {
        let config = RunConfig::parse("t.toml", TINY).unwrap();
        assert_eq!(
            config.model.backbone().unwrap(),
            ([1, 1, 1, 1], [8, 8, 16, 32, 64])
        );
        assert_eq!(config.model.kind(), "unet");
        assert_eq!(config.train.tile, 64);
        assert_eq!(config.train.batch, 8);
        assert_eq!(config.train.ignore_index, Some(255));
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let bad = TINY.replace("tile = 64", "tile = 60");
        let error = RunConfig::parse("t.toml", &bad).unwrap_err();
        assert!(
            error.contains("t.toml") && error.contains("multiple of 32"),
            "{error}"
        );
        let bad = TINY.replace("classes = 2", "classes = 2\nextra = 1");
        let error = RunConfig::parse("t.toml", &bad).unwrap_err();
        assert!(error.contains("extra"), "{error}");
        let bad = TINY.replace("encoder = \"resnet\"", "encoder = \"vgg\"");
        assert!(RunConfig::parse("t.toml", &bad)
            .unwrap_err()
            .contains("vgg"));
        let bad = TINY.replace("tile = 64", "tile = 64\nclass_weights = [1.0]");
        assert!(RunConfig::parse("t.toml", &bad)
            .unwrap_err()
            .contains("1 values for 2 classes"));
    }

    const SSD: &str = r#"
name = "s"
[model]
kind = "ssd"
encoder = "resnet"
blocks = [1, 1, 1, 1]
in_channels = 1
classes = 2
grids = [32, 16, 4]
[train]
tile = 128
"#;

    #[test]
    fn the_model_kind_picks_the_family_and_defaults_to_the_unet() {
        let config = RunConfig::parse("s.toml", SSD).unwrap();
        let ModelConfig::Ssd(ssd) = &config.model else {
            panic!("{config:?}")
        };
        assert_eq!(ssd.strides(128), [4, 8, 32]);
        assert_eq!((ssd.focal_alpha, ssd.focal_gamma), (0.25, 1.0));
        assert_eq!(ssd.zooms, [1.0]);
        // Written with its kind, and read back the same, as TOML and as a run record's JSON.
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("kind = \"ssd\""), "{text}");
        assert_eq!(RunConfig::parse("again.toml", &text).unwrap(), config);
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<RunConfig>(&json).unwrap(), config);
        // A run record written before the zoo has no kind: a U-Net.
        let unet = RunConfig::parse("t.toml", TINY).unwrap();
        let mut old = serde_json::to_value(&unet).unwrap();
        old["model"].as_object_mut().unwrap().remove("kind");
        assert_eq!(serde_json::from_value::<RunConfig>(old).unwrap(), unet);
    }

    #[test]
    fn every_shipped_configuration_reads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut kinds = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let config = RunConfig::read(&path).unwrap_or_else(|e| panic!("{e}"));
                kinds.push(config.model.kind());
            }
        }
        assert!(
            kinds.contains(&"unet") && kinds.contains(&"ssd"),
            "{kinds:?}"
        );
    }

    #[test]
    fn bad_detector_configs_say_what_is_wrong() {
        let error =
            |from: &str, to: &str| RunConfig::parse("s.toml", &SSD.replace(from, to)).unwrap_err();
        let e = error("kind = \"ssd\"", "kind = \"yolo\"");
        assert!(e.contains("unknown model kind \"yolo\""), "{e}");
        let e = error("grids = [32, 16, 4]", "grids = [32, 12]");
        assert!(
            e.contains("grids[1] is 12: it must divide train.tile 128"),
            "{e}"
        );
        let e = error("grids = [32, 16, 4]", "grids = [128]");
        assert!(e.contains("1 px cells"), "{e}");
        let e = error("grids = [32, 16, 4]", "grids = [32, 32]");
        assert!(e.contains("appears twice"), "{e}");
        let e = error("classes = 2", "classes = 2\nfocal_gamma = 0.5");
        assert!(e.contains("focal_gamma is 0.5: 0, or at least 1"), "{e}");
        let e = error("classes = 2", "classes = 2\ndecoder = [8, 8, 8, 8, 8]");
        assert!(e.contains("decoder"), "{e}");
        let e = error("tile = 128", "tile = 128\nclass_weights = [1.0, 2.0]");
        assert!(e.contains("focal_alpha"), "{e}");
    }

    #[test]
    fn inference_keeps_the_last_weights_unless_told_the_best() {
        let keep = |line: &str| {
            RunConfig::parse(
                "t.toml",
                &TINY.replace("tile = 64", &format!("tile = 64\n{line}")),
            )
            .map(|c| c.train.keep)
        };
        assert_eq!(keep(""), Ok(KeptWeights::Last));
        assert_eq!(keep("keep = \"best\""), Ok(KeptWeights::Best));
        assert!(keep("keep = \"first\"").unwrap_err().contains("keep"));
        assert_eq!(KeptWeights::parse("best"), Ok(KeptWeights::Best));
        assert!(KeptWeights::parse("worst")
            .unwrap_err()
            .contains("\"last\" or \"best\""));
    }

    #[test]
    fn flips_read_as_axes_or_as_a_switch() {
        let with = |flips: &str| {
            let text = format!("{TINY}[train.augment]\nflips = {flips}\n");
            RunConfig::parse("t.toml", &text).map(|c| c.train.augment.flips)
        };
        assert_eq!(with("true"), Ok(Flips::Both));
        assert_eq!(with("false"), Ok(Flips::None));
        assert_eq!(with("\"vertical\""), Ok(Flips::Vertical));
        assert_eq!(with("\"horizontal\""), Ok(Flips::Horizontal));
        assert_eq!(with("\"both\""), Ok(Flips::Both));
        let error = with("\"diagonal\"").unwrap_err();
        assert!(
            error.contains("t.toml") && error.contains("flips"),
            "{error}"
        );
        // Written back as a name, and read again the same.
        let config =
            RunConfig::parse("t.toml", &format!("{TINY}[train.augment]\nflips = true\n")).unwrap();
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("flips = \"both\""), "{text}");
        assert_eq!(RunConfig::parse("again.toml", &text).unwrap(), config);
    }
}
