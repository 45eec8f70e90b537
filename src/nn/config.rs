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

/// A U-Net over a ResNet encoder. `resnet18` and `resnet34` are torchvision's shapes
/// (stem 64, widths 64/128/256/512, blocks 2/2/2/2 or 3/4/6/3); other sizes give the
/// blocks and widths themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
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

impl ModelConfig {
    /// Blocks per stage and widths (stem, four stages), after the named presets.
    pub fn shape(&self) -> Result<([usize; 4], [usize; 5]), String> {
        let preset = match self.encoder.as_str() {
            "resnet18" => Some([2, 2, 2, 2]),
            "resnet34" => Some([3, 4, 6, 3]),
            "resnet" => None,
            other => {
                return Err(format!(
                    "unknown encoder {other:?} (resnet18, resnet34 or resnet)"
                ))
            }
        };
        let blocks = match (preset, self.blocks) {
            (Some(preset), None) => preset,
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{} fixes its blocks; remove `blocks`",
                    self.encoder
                ))
            }
            (None, Some(blocks)) => blocks,
            (None, None) => return Err("encoder \"resnet\" needs `blocks`".into()),
        };
        let widths = self.widths.unwrap_or([64, 64, 128, 256, 512]);
        if blocks.contains(&0) || widths.contains(&0) || self.decoder.contains(&0) {
            return Err("blocks, widths and decoder channels must be positive".into());
        }
        if !matches!(self.in_channels, 1 | 3) {
            return Err(format!("in_channels is {}: 1 or 3", self.in_channels));
        }
        if self.classes < 2 {
            return Err(format!("classes is {}: at least 2", self.classes));
        }
        Ok((blocks, widths))
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
        self.model.shape()?;
        let train = &self.train;
        if train.tile == 0 || !train.tile.is_multiple_of(32) {
            return Err(format!(
                "train.tile is {}: a positive multiple of 32",
                train.tile
            ));
        }
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
        if let Some(weights) = &train.class_weights {
            if weights.len() != self.model.classes {
                return Err(format!(
                    "train.class_weights has {} values for {} classes",
                    weights.len(),
                    self.model.classes
                ));
            }
            if weights.iter().any(|w| !(*w >= 0.0 && w.is_finite())) {
                return Err("train.class_weights must be finite and not negative".into());
            }
        }
        if let Some(ignore) = train.ignore_index {
            if (ignore as usize) < self.model.classes {
                return Err(format!(
                    "train.ignore_index {ignore} is one of the {} classes",
                    self.model.classes
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
            config.model.shape().unwrap(),
            ([1, 1, 1, 1], [8, 8, 16, 32, 64])
        );
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
