//! `areo labels convert|rasterize|from-masks|stats`.

use crate::labels::ImageSize;
use crate::pipeline::labels::{
    class_map, files_with_extension, masks_to_labels, stats, write_all, Format, LabelOutput,
    LabelRequest, LabelSource, Summary,
};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// PASCAL VOC XML (LabelImg).
    Voc,
    /// YOLO boxes, `class cx cy w h`.
    Yolo,
    /// YOLO segmentation polygons.
    YoloSeg,
    /// VGG Image Annotator 1.x/2.x JSON.
    Via,
    Labelme,
    /// COCO instances JSON.
    Coco,
    /// Crater CSV, `x,y,diameter` in pixels.
    Craters,
}

impl From<FormatArg> for Format {
    fn from(value: FormatArg) -> Self {
        match value {
            FormatArg::Voc => Format::Voc,
            FormatArg::Yolo => Format::Yolo,
            FormatArg::YoloSeg => Format::YoloSeg,
            FormatArg::Via => Format::Via,
            FormatArg::Labelme => Format::Labelme,
            FormatArg::Coco => Format::Coco,
            FormatArg::Craters => Format::Craters,
        }
    }
}

#[derive(Debug, Args)]
pub struct Input {
    /// The format of the inputs.
    #[arg(long, value_enum)]
    from: FormatArg,
    /// Annotation files, or folders of them.
    #[arg(required = true, value_name = "IN")]
    inputs: Vec<PathBuf>,
    /// Class map: classes.txt (a name per line) or id,name lines. Default: the Mars classes,
    /// extended by any other class found (and reported).
    #[arg(long, value_name = "FILE")]
    classes: Option<PathBuf>,
    /// Image size WxH for formats that do not record it (YOLO, VIA, crater lists).
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    size: Option<ImageSize>,
    /// Folder of the images, to read their sizes.
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// VIA: the region attribute that holds the class.
    #[arg(long)]
    class_attribute: Option<String>,
    /// VIA: the class of regions without one.
    #[arg(long)]
    default_class: Option<String>,
    /// Draw circles (craters) at this fraction of their radius, so touching ones stay apart.
    #[arg(long, value_name = "FRACTION")]
    circle_scale: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub enum LabelsCommand {
    /// Convert annotations from one format to another.
    Convert {
        #[command(flatten)]
        input: Input,
        #[arg(long, value_enum)]
        to: FormatArg,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Paint annotations into masks: one PNG per image, pixel = class id (0 background).
    Rasterize {
        #[command(flatten)]
        input: Input,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Write paletted PNGs with LabelMe's colours (the values stay class ids).
        #[arg(long)]
        palette: bool,
        /// Also write <image>.instances.png: 16-bit object numbers.
        #[arg(long)]
        instances: bool,
    },
    /// Trace class masks (PNG, pixel = class id) back into polygons in an annotation format,
    /// to correct predictions in VIA, LabelMe or a COCO tool.
    FromMasks {
        /// Mask PNGs, or folders of them.
        #[arg(required = true, value_name = "MASK")]
        masks: Vec<PathBuf>,
        #[arg(long, value_enum)]
        to: FormatArg,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Class map naming the mask values (default: the Mars classes).
        #[arg(long, value_name = "FILE")]
        classes: Option<PathBuf>,
        /// How far, in pixels, a simplified outline may stray from the traced one.
        #[arg(long, default_value_t = 1.0)]
        tolerance: f64,
    },
    /// Objects per class and shape, and a histogram of object sizes.
    Stats {
        #[command(flatten)]
        input: Input,
    },
}

pub(crate) fn parse_size(text: &str) -> Result<ImageSize, String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?}: expected WxH, e.g. 1024x1024"))?;
    let parse = |v: &str| v.trim().parse::<u32>().ok().filter(|n| *n > 0);
    match (parse(w), parse(h)) {
        (Some(width), Some(height)) => Ok(ImageSize {
            width,
            height,
            depth: 3,
        }),
        _ => Err(format!(
            "{text:?}: expected WxH with positive whole numbers"
        )),
    }
}

impl Input {
    /// The source, with paths made absolute so the engine can read it from anywhere.
    pub fn source(&self) -> anyhow::Result<LabelSource> {
        let absolute = |p: &PathBuf| std::path::absolute(p);
        Ok(LabelSource {
            format: self.from.into(),
            inputs: self.inputs.iter().map(absolute).collect::<Result<_, _>>()?,
            classes: self.classes.as_ref().map(absolute).transpose()?,
            size: self.size,
            images: self.images.as_ref().map(absolute).transpose()?,
            class_attribute: self.class_attribute.clone(),
            default_class: self.default_class.clone(),
            circle_scale: self.circle_scale,
        })
    }
}

fn print_failures(summary: &Summary) {
    for line in summary.failure_lines() {
        eprintln!("error: {line}");
    }
}

fn report(summary: &Summary, added: &[String], json: bool) -> ExitCode {
    if json {
        println!("{}", json!({"summary": summary, "classes_added": added}));
    } else {
        println!(
            "read {} file(s): {} image(s), {} object(s); wrote {} file(s)",
            summary.files_read, summary.images, summary.objects, summary.files_written
        );
        if !added.is_empty() {
            println!(
                "classes not among the Mars classes, given the next ids: {}",
                added.join(", ")
            );
        }
        if summary.shapes_clipped > 0 {
            println!(
                "{} shape(s) reached outside their image and were clipped",
                summary.shapes_clipped
            );
        }
        for line in summary.dropped_lines() {
            println!("{line}");
        }
        for (why, count) in &summary.shapes_skipped {
            println!("skipped {count} shape(s): {why}");
        }
        print_failures(summary);
    }
    if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What `labels convert` and `labels rasterize` do, with every path absolute: run here in the
/// CLI's own process, or queued as a job from the dashboard's palette. `None` for the other
/// subcommands, which only run here.
pub fn label_request(command: &LabelsCommand) -> anyhow::Result<Option<LabelRequest>> {
    Ok(Some(match command {
        LabelsCommand::Convert { input, to, out } => LabelRequest {
            source: input.source()?,
            output: LabelOutput::Convert {
                to: (*to).into(),
                out: std::path::absolute(out)?,
            },
        },
        LabelsCommand::Rasterize {
            input,
            out,
            palette,
            instances,
        } => LabelRequest {
            source: input.source()?,
            output: LabelOutput::Rasterize {
                out: std::path::absolute(out)?,
                palette: *palette,
                instances: *instances,
            },
        },
        _ => return Ok(None),
    }))
}

pub fn run(command: LabelsCommand, json: bool) -> anyhow::Result<ExitCode> {
    let mut summary = Summary::default();
    match command {
        LabelsCommand::Convert { .. } | LabelsCommand::Rasterize { .. } => {
            let request = label_request(&command)?.expect("a convert or rasterize request");
            let (summary, added) = request.run()?;
            Ok(report(&summary, &added, json))
        }
        LabelsCommand::FromMasks {
            masks,
            to,
            out,
            classes,
            tolerance,
        } => {
            let classes = class_map(classes.as_deref())?;
            let files = files_with_extension(&masks, "png");
            let images = masks_to_labels(&files, &classes, tolerance, &mut summary);
            write_all(to.into(), &images, &out, &classes, &mut summary);
            Ok(report(&summary, &[], json))
        }
        LabelsCommand::Stats { input } => {
            let stats = stats(&input.source()?.load(&mut summary)?.images);
            if json {
                println!("{}", json!({"summary": summary, "stats": stats}));
            } else {
                println!("{} image(s), {} object(s)", summary.images, summary.objects);
                println!("\nCLASS  OBJECTS");
                for (class, count) in &stats.per_class {
                    println!("{class}  {count}");
                }
                println!("\nSHAPE  OBJECTS");
                for (shape, count) in &stats.per_shape {
                    println!("{shape}  {count}");
                }
                println!("\nSIZE (px, up to)  OBJECTS");
                for (size, count) in &stats.sizes {
                    println!("{size}  {count}");
                }
                print_failures(&summary);
            }
            Ok(if summary.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
