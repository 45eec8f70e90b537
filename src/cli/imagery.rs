//! `areo prep ...` and `areo tile ...`.

use super::jobs::{product_image, Daemon};
use super::labels::FormatArg;
use super::output::CliProgress;
use crate::engine::Client;
use crate::engine::JobSpec;
use crate::labels::transform::Warp;
use crate::labels::{ImageLabels, ImageSize};
use crate::pipeline::labels::{self, Format};
use crate::pipeline::source::open_image;
use crate::pipeline::tile::{stitch_tiles, StitchInput, TileRequest};
use crate::raster::tile::{Edge, TileSpec};
use crate::raster::{centre, BitDepth, Filter, Image, Sampling, Similarity};
use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum PrepCommand {
    /// Cut a window (--box X,Y,W,H), or the no-data margins away (--auto).
    Crop {
        input: PathBuf,
        #[arg(long, value_name = "X,Y,W,H", conflicts_with = "auto")]
        r#box: Option<String>,
        #[arg(long)]
        auto: bool,
        /// The no-data value --auto trims.
        #[arg(long, default_value_t = 0.0)]
        no_data: f32,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        follow: FollowingLabels,
    },
    /// Shift by whole pixels, filling what is uncovered.
    Translate {
        input: PathBuf,
        #[arg(long, allow_hyphen_values = true)]
        dx: i64,
        #[arg(long, allow_hyphen_values = true)]
        dy: i64,
        #[arg(long, default_value_t = 0.0)]
        fill: f32,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        follow: FollowingLabels,
    },
    /// Mirror left-right (--horizontal) or top-bottom (--vertical).
    Flip {
        input: PathBuf,
        #[arg(
            long,
            conflicts_with = "vertical",
            required_unless_present = "vertical"
        )]
        horizontal: bool,
        #[arg(long)]
        vertical: bool,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        follow: FollowingLabels,
    },
    /// Turn clockwise by quarter turns.
    Rot90 {
        input: PathBuf,
        #[arg(long, default_value_t = 1)]
        quarters: u32,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        follow: FollowingLabels,
    },
    /// Turn counter-clockwise by any angle (negative: clockwise) about the centre.
    Rotate {
        input: PathBuf,
        #[arg(long, allow_hyphen_values = true)]
        degrees: f64,
        #[arg(long, value_enum, default_value_t = SamplingArg::Bicubic)]
        sampling: SamplingArg,
        /// Grow the canvas to hold the whole turned image (else keep the size, cut corners).
        #[arg(long)]
        expand: bool,
        /// Value for what lies outside the input.
        #[arg(long, default_value_t = 0.0)]
        fill: f32,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        follow: FollowingLabels,
    },
    /// Resample: by a factor (--factor 0.5) or to a size (--size WxH).
    Scale {
        input: PathBuf,
        #[arg(long, conflicts_with = "size", required_unless_present = "size")]
        factor: Option<f64>,
        #[arg(long, value_name = "WxH")]
        size: Option<String>,
        #[arg(long, value_enum, default_value_t = FilterArg::Area)]
        filter: FilterArg,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        follow: FollowingLabels,
    },
    /// Register MOVING onto REFERENCE (same size) by phase correlation: prints the shift
    /// found and its quality, and writes MOVING shifted back onto the reference (--labels:
    /// MOVING's annotations, which follow it).
    Align {
        reference: PathBuf,
        moving: PathBuf,
        /// Also find rotation and scale (log-polar phase correlation), and undo all three.
        #[arg(long)]
        rotation: bool,
        #[arg(long, default_value_t = 0.0)]
        fill: f32,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        follow: FollowingLabels,
    },
    /// Change bit depth and contrast: a percentile stretch (--stretch 2:98), min-max, gamma.
    Convert {
        input: PathBuf,
        #[arg(long, value_parser = ["8", "16"])]
        depth: Option<String>,
        /// Percentiles LOW:HIGH mapped onto the full range.
        #[arg(long, value_name = "LOW:HIGH", conflicts_with = "minmax")]
        stretch: Option<String>,
        #[arg(long)]
        minmax: bool,
        #[arg(long, default_value_t = 1.0)]
        gamma: f32,
        /// Samples with this value are no data: left out of the statistics, written as 0.
        #[arg(long)]
        no_data: Option<f32>,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Annotations that follow the image through every `prep` step that moves pixels: crop,
/// translate, scale, flip, rot90, rotate and align.
#[derive(Debug, Args)]
pub struct FollowingLabels {
    /// Annotations of the input image: cropped, moved (clipped at the edges), scaled,
    /// mirrored or turned as the image is, and written in the same format into
    /// --labels-out, named after --out. Boxes turned by other than quarter turns become
    /// polygons, written as their bounding boxes by box formats.
    #[arg(long, requires_all = ["from", "labels_out"])]
    labels: Option<PathBuf>,
    /// The format of --labels (and of what is written).
    #[arg(long, value_enum, requires = "labels")]
    from: Option<FormatArg>,
    /// Folder the changed annotations are written into.
    #[arg(long, requires = "labels", value_name = "DIR")]
    labels_out: Option<PathBuf>,
    /// Class map of the annotations (default: the Mars classes).
    #[arg(long, requires = "labels")]
    label_classes: Option<PathBuf>,
}

impl FollowingLabels {
    /// Reads the labels of `input` (decoded as `image`), changes them as
    /// `change` says (returning how many shapes it clipped) and writes them for `out`.
    /// Returns what was written, for the command's report.
    fn apply(
        &self,
        input: &Path,
        image: &Image,
        out: &Path,
        change: impl FnOnce(&ImageLabels, ImageSize, &str) -> (ImageLabels, usize),
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let (Some(path), Some(format), Some(dir)) = (&self.labels, self.from, &self.labels_out)
        else {
            return Ok(None);
        };
        let classes = labels::class_map(self.label_classes.as_deref())?;
        let size = ImageSize {
            width: image.width,
            height: image.height,
            depth: image.bands,
        };
        let format = Format::from(format);
        let labels = labels::labels_of_image(path, format, &classes, input, size)?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (changed, clipped) = change(&labels, size, &name);
        let mut summary = labels::Summary::default();
        labels::write_all(
            format,
            std::slice::from_ref(&changed),
            dir,
            &classes,
            &mut summary,
        );
        if let Some((file, reason)) = summary.failed.first() {
            bail!("writing the labels: {}: {reason}", file.display());
        }
        Ok(Some(json!({
            "labels_out": dir,
            "objects": changed.objects.len(),
            "dropped": labels.objects.len() - changed.objects.len(),
            "clipped": clipped,
        })))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FilterArg {
    Nearest,
    Bilinear,
    /// Area averaging, for shrinking.
    Area,
    Lanczos3,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SamplingArg {
    Nearest,
    Bilinear,
    Bicubic,
}

impl From<SamplingArg> for Sampling {
    fn from(value: SamplingArg) -> Self {
        match value {
            SamplingArg::Nearest => Sampling::Nearest,
            SamplingArg::Bilinear => Sampling::Bilinear,
            SamplingArg::Bicubic => Sampling::Bicubic,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EdgeArg {
    Pad,
    Shift,
    Drop,
}

#[derive(Debug, Args)]
pub struct TileArgs {
    /// The image: PNG, JPEG, TIFF, PGM, JPEG 2000, or a PDS3 IMG (or its detached label).
    #[arg(required_unless_present = "product", conflicts_with = "product")]
    input: Option<PathBuf>,
    /// A catalog product instead of a file: its downloaded science image (else its browse
    /// image) is tiled by the daemon into `tiles/<PDSID>` (or --out) and recorded in the
    /// catalog's lineage, with its label for ground coordinates.
    #[arg(long, value_name = "PDSID")]
    pub product: Option<String>,
    /// Chip size in pixels.
    #[arg(long, default_value_t = 256)]
    size: u32,
    /// Step between chips (default: the size; smaller overlaps).
    #[arg(long)]
    stride: Option<u32>,
    #[arg(long, value_enum, default_value_t = EdgeArg::Shift)]
    edge: EdgeArg,
    /// Skip chips where more than FRACTION of pixels equal VALUE (VALUE:FRACTION).
    #[arg(long, value_name = "VALUE:FRACTION")]
    skip_no_data: Option<String>,
    /// A PDS3 label of the image (same size), for chips' ground coordinates.
    #[arg(long)]
    label: Option<PathBuf>,
    /// Annotations of the image, to write a class mask and the objects' boxes per chip.
    #[arg(long, requires = "from")]
    labels: Option<PathBuf>,
    #[arg(long, value_enum)]
    from: Option<FormatArg>,
    /// Paint circles (craters) at this fraction of their radius, so touching ones stay apart.
    #[arg(long, value_name = "FRACTION", requires = "labels")]
    circle_scale: Option<f64>,
    /// A chip's boxes hold the objects with at least this share of their box inside it
    /// (default 0.5).
    #[arg(long, value_name = "FRACTION", requires = "labels")]
    min_visible: Option<f64>,
    /// Class map for the masks (default: the Mars classes).
    #[arg(long)]
    classes: Option<PathBuf>,
    #[arg(long, required_unless_present = "product")]
    out: Option<PathBuf>,
}

impl TileArgs {
    /// The request for `input` into `out`, with paths made absolute so the engine can run
    /// it from anywhere.
    pub fn request(&self, input: &Path, out: &Path) -> anyhow::Result<TileRequest> {
        let edge = match self.edge {
            EdgeArg::Pad => Edge::Pad(0.0),
            EdgeArg::Shift => Edge::ShiftInward,
            EdgeArg::Drop => Edge::Drop,
        };
        let skip_no_data = self
            .skip_no_data
            .as_deref()
            .map(|t| pair::<f64>(t, "--skip-no-data"))
            .transpose()?
            .map(|(v, f)| (v as f32, f));
        Ok(TileRequest {
            input: std::path::absolute(input)?,
            spec: TileSpec {
                size: self.size,
                stride: self.stride.unwrap_or(self.size),
                edge,
                skip_no_data,
            },
            label: self.label.as_deref().map(std::path::absolute).transpose()?,
            labels: match (&self.labels, self.from) {
                (Some(path), Some(format)) => Some((std::path::absolute(path)?, format.into())),
                _ => None,
            },
            classes: self
                .classes
                .as_deref()
                .map(std::path::absolute)
                .transpose()?,
            circle_scale: self.circle_scale,
            min_visible: self.min_visible,
            out: std::path::absolute(out)?,
        })
    }
}

/// Any image areo reads, PDS3 IMG products included (their samples as `areo tile` keeps them).
fn read_image(path: &std::path::Path) -> anyhow::Result<Image> {
    Ok(open_image(path)?.0)
}

fn pair<T: std::str::FromStr>(text: &str, what: &str) -> anyhow::Result<(T, T)> {
    let (a, b) = text
        .split_once(':')
        .with_context(|| format!("{what}: expected A:B, found {text:?}"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<T>()
            .ok()
            .with_context(|| format!("{what}: {v:?} is not a number"))
    };
    Ok((parse(a)?, parse(b)?))
}

/// Writes the result and reports it, with what the labels that followed it became.
fn done(
    input: &Path,
    image: &Image,
    out: &Path,
    labels: Option<serde_json::Value>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    image.save_png(out)?;
    if json {
        let mut report = json!({"input": input, "output": out, "width": image.width, "height": image.height, "bands": image.bands, "bit_depth": image.depth.max().log2().ceil()});
        if let Some(labels) = labels {
            report["labels"] = labels;
        }
        println!("{report}");
    } else {
        println!(
            "{} -> {} ({} x {})",
            input.display(),
            out.display(),
            image.width,
            image.height
        );
        if let Some(labels) = &labels {
            print_labels(labels);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The line saying where the labels that followed an image went (`FollowingLabels::apply`'s
/// report).
fn print_labels(labels: &serde_json::Value) {
    println!(
        "labels -> {}: {} object(s), {} dropped, {} clipped",
        labels["labels_out"].as_str().unwrap_or_default(),
        labels["objects"],
        labels["dropped"],
        labels["clipped"]
    );
}

/// How `Image::transformed(t, ..)` moves points of `image` onto `onto`'s canvas: centre onto
/// centre, turned and scaled by `t`, then shifted.
fn warp_of(t: &Similarity, image: &Image, onto: &Image) -> Warp {
    // Labels measure from the image's corner; pixel centres, which `centre` counts in, sit
    // half a pixel in from it.
    let on_image = |[x, y]: [f64; 2]| [x + 0.5, y + 0.5];
    let [cx, cy] = on_image(centre(onto.width, onto.height));
    Warp {
        degrees: t.rotation,
        scale: t.scale,
        from: on_image(centre(image.width, image.height)),
        to: [cx + t.dx, cy + t.dy],
    }
}

pub fn prep(command: PrepCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        PrepCommand::Crop {
            input,
            r#box,
            auto,
            no_data,
            out,
            follow,
        } => {
            let image = read_image(&input)?;
            let (x, y, w, h) = if auto {
                image
                    .data_window(no_data)
                    .context("the image holds nothing but no data")?
            } else {
                let text = r#box.context("give --box X,Y,W,H or --auto")?;
                let [x, y, w, h] = super::output::parse_box("--box", &text)?;
                (x, y, w, h)
            };
            let cropped = image.crop(x, y, w, h)?;
            let labels = follow.apply(&input, &image, &out, |labels, _, name| {
                labels.cropped(x, y, w, h, name)
            })?;
            done(&input, &cropped, &out, labels, json)
        }
        PrepCommand::Translate {
            input,
            dx,
            dy,
            fill,
            out,
            follow,
        } => {
            let image = read_image(&input)?;
            let labels = follow.apply(&input, &image, &out, |labels, _, name| {
                labels.translated(dx, dy, name)
            })?;
            done(&input, &image.translate(dx, dy, fill), &out, labels, json)
        }
        PrepCommand::Flip {
            input,
            horizontal,
            out,
            follow,
            ..
        } => {
            let image = read_image(&input)?;
            let flipped = if horizontal {
                image.flip_horizontal()
            } else {
                image.flip_vertical()
            };
            let labels = follow.apply(&input, &image, &out, |labels, size, name| {
                (labels.flipped(size, !horizontal, name), 0)
            })?;
            done(&input, &flipped, &out, labels, json)
        }
        PrepCommand::Scale {
            input,
            factor,
            size,
            filter,
            out,
            follow,
        } => {
            let image = read_image(&input)?;
            let (width, height) = match (factor, size) {
                (Some(f), _) if f > 0.0 && f.is_finite() => (
                    (image.width as f64 * f).round().max(1.0) as u32,
                    (image.height as f64 * f).round().max(1.0) as u32,
                ),
                (Some(f), _) => bail!("--factor {f} must be a positive number"),
                (None, Some(text)) => {
                    let (w, h) = text
                        .split_once(['x', 'X'])
                        .with_context(|| format!("--size {text:?}: expected WxH"))?;
                    (
                        w.trim()
                            .parse()
                            .with_context(|| format!("--size {text:?}"))?,
                        h.trim()
                            .parse()
                            .with_context(|| format!("--size {text:?}"))?,
                    )
                }
                (None, None) => bail!("give --factor or --size"),
            };
            let filter = match filter {
                FilterArg::Nearest => Filter::Nearest,
                FilterArg::Bilinear => Filter::Bilinear,
                FilterArg::Area => Filter::Area,
                FilterArg::Lanczos3 => Filter::Lanczos3,
            };
            let resized = image.resize(width, height, filter)?;
            let (sx, sy) = (
                width as f64 / image.width as f64,
                height as f64 / image.height as f64,
            );
            let labels = follow.apply(&input, &image, &out, |labels, _, name| {
                let mut scaled = labels.scaled(sx, sy);
                scaled.image = name.to_string();
                (scaled, 0)
            })?;
            done(&input, &resized, &out, labels, json)
        }
        PrepCommand::Align {
            reference,
            moving: moving_path,
            rotation,
            fill,
            out,
            follow,
        } => {
            let reference = read_image(&reference)?;
            let moving = read_image(&moving_path)?;
            let (aligned, (mut report, text), labels) = if rotation {
                let found = crate::raster::align::register(&reference, &moving)?;
                let t = found.transform;
                let back = t.inverse();
                let aligned = moving.transformed(
                    &back,
                    reference.width,
                    reference.height,
                    Sampling::Bicubic,
                    fill,
                );
                let warp = warp_of(&back, &moving, &aligned);
                let labels = follow.apply(&moving_path, &moving, &out, |labels, _, name| {
                    labels.warped(&warp, aligned.width, aligned.height, name)
                })?;
                let report = json!({"rotation": t.rotation, "scale": t.scale, "dx": t.dx,
                                    "dy": t.dy, "quality": found.quality});
                let text = format!(
                    "{} is turned {:.2} degrees, scaled {:.4}, shifted by ({:.2}, {:.2}) px \
                     (quality {:.2})",
                    moving_path.display(),
                    t.rotation,
                    t.scale,
                    t.dx,
                    t.dy,
                    found.quality
                );
                (aligned, (report, text), labels)
            } else {
                let shift = crate::raster::align::phase_correlate(&reference, &moving)?;
                let (dx, dy) = (-shift.dx.round() as i64, -shift.dy.round() as i64);
                let aligned = moving.translate(dx, dy, fill);
                let labels = follow.apply(&moving_path, &moving, &out, |labels, _, name| {
                    labels.translated(dx, dy, name)
                })?;
                let report = json!({"dx": shift.dx, "dy": shift.dy, "quality": shift.quality});
                let text = format!(
                    "{} is shifted by ({:.2}, {:.2}) px (quality {:.2})",
                    moving_path.display(),
                    shift.dx,
                    shift.dy,
                    shift.quality
                );
                (aligned, (report, text), labels)
            };
            aligned.save_png(&out)?;
            if json {
                report["output"] = json!(out);
                if let Some(labels) = labels {
                    report["labels"] = labels;
                }
                println!("{report}");
            } else {
                println!("{text}; aligned copy: {}", out.display());
                if let Some(labels) = &labels {
                    print_labels(labels);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PrepCommand::Rot90 {
            input,
            quarters,
            out,
            follow,
        } => {
            let image = read_image(&input)?;
            let labels = follow.apply(&input, &image, &out, |labels, size, name| {
                (labels.turned(size, quarters, name), 0)
            })?;
            done(&input, &image.rot90(quarters), &out, labels, json)
        }
        PrepCommand::Rotate {
            input,
            degrees,
            sampling,
            expand,
            fill,
            out,
            follow,
        } => {
            let image = read_image(&input)?;
            let turned = image.rotate(degrees, sampling.into(), expand, fill);
            let turn = Similarity {
                rotation: degrees,
                ..Similarity::IDENTITY
            };
            let warp = warp_of(&turn, &image, &turned);
            let labels = follow.apply(&input, &image, &out, |labels, _, name| {
                labels.warped(&warp, turned.width, turned.height, name)
            })?;
            done(&input, &turned, &out, labels, json)
        }
        PrepCommand::Convert {
            input,
            depth,
            stretch,
            minmax,
            gamma,
            no_data,
            out,
        } => {
            let image = read_image(&input)?;
            let target = match depth.as_deref() {
                Some("16") => BitDepth::Sixteen,
                Some(_) => BitDepth::Eight,
                None => image.depth,
            };
            let converted = match (stretch, minmax) {
                (Some(range), _) => {
                    let (low, high) = pair::<f64>(&range, "--stretch")?;
                    let (a, b) = image
                        .percentiles(low, high, no_data)
                        .context("no data to stretch")?;
                    image.stretch(a, b, gamma, target, no_data)?
                }
                (None, true) => {
                    let (a, b) = image
                        .percentiles(0.0, 100.0, no_data)
                        .context("no data to stretch")?;
                    image.stretch(a, b, gamma, target, no_data)?
                }
                (None, false) if gamma != 1.0 => {
                    image.stretch(0.0, image.depth.max(), gamma, target, no_data)?
                }
                (None, false) => image.to_depth(target),
            };
            done(&input, &converted, &out, None, json)
        }
    }
}

#[derive(Debug, Args)]
pub struct StitchArgs {
    /// A tile set folder (with manifest.json), as `areo tile` wrote it.
    tiles: PathBuf,
    /// Stitch the chips' class masks instead of the chips (overlaps: the nearest chip centre).
    #[arg(long, conflicts_with = "predictions")]
    masks: bool,
    /// Stitch per-chip class predictions from this folder, named as the chips.
    #[arg(long, value_name = "DIR")]
    predictions: Option<PathBuf>,
    /// The PNG to write, at the source image's size.
    #[arg(long)]
    out: PathBuf,
}

pub fn stitch(args: StitchArgs, json: bool) -> anyhow::Result<ExitCode> {
    let input = match (args.masks, args.predictions) {
        (true, _) => StitchInput::Masks,
        (false, Some(dir)) => StitchInput::Predictions(dir),
        (false, None) => StitchInput::Chips,
    };
    let image = stitch_tiles(&args.tiles, &input)?;
    image.save_png(&args.out)?;
    if json {
        println!(
            "{}",
            json!({"out": args.out, "width": image.width, "height": image.height})
        );
    } else {
        println!(
            "{} -> {} ({} x {})",
            args.tiles.display(),
            args.out.display(),
            image.width,
            image.height
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn tile(workspace: Option<PathBuf>, args: TileArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (Some(input), Some(out)) = (&args.input, &args.out) else {
        let pdsid = args
            .product
            .clone()
            .expect("clap requires an input or --product");
        return tile_product(workspace, &args, &pdsid, json);
    };
    let request = args.request(input, out)?;
    let manifest = request.run(&CliProgress::new())?;
    if json {
        println!("{}", serde_json::to_string(&manifest)?);
    } else {
        println!(
            "{}: {} x {} -> {} chip(s) of {} px in {} (manifest.json)",
            request.input.display(),
            manifest.width,
            manifest.height,
            manifest.chips.len(),
            manifest.size,
            request.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Tiles a downloaded catalog product as a daemon job, so the tile set joins the lineage.
fn tile_product(
    workspace: Option<PathBuf>,
    args: &TileArgs,
    pdsid: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut daemon = Daemon::connect(workspace)?;
    let spec = tile_product_job(args, pdsid, &mut daemon.client, &daemon.workspace)?;
    let JobSpec::Tile(request) = &spec else {
        unreachable!("a tile job")
    };
    let out = request.out.clone();
    daemon.run_and_print(spec, json, |result| {
        format!(
            "{}: {} x {} -> {} chip(s) in {}",
            result["source"].as_str().unwrap_or_default(),
            result["width"],
            result["height"],
            result["chips"],
            out.display()
        )
    })
}

/// The tiling of a catalog product `areo tile --product` asks for (the dashboard's palette
/// too): into `tiles/PDSID` unless `--out` says otherwise, with its label when it has one.
pub fn tile_product_job(
    args: &TileArgs,
    pdsid: &str,
    client: &mut Client,
    workspace: &Path,
) -> anyhow::Result<JobSpec> {
    let (image, label) = product_image(client, workspace, pdsid)?;
    let out = match &args.out {
        Some(out) => std::env::current_dir()?.join(out),
        None => workspace.join("tiles").join(pdsid.to_ascii_uppercase()),
    };
    let mut request = args.request(&image, &out)?;
    if request.label.is_none() {
        request.label = label;
    }
    Ok(JobSpec::Tile(request))
}
