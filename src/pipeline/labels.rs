//! Annotation files in batches: read a folder of any supported format, write another
//! format, rasterise masks, count what is there. One bad file never stops the batch: each is
//! reported with what was wrong.

use crate::labels::via::ViaOptions;
use crate::labels::{
    clip_to_image, coco, craters, labelme, rasterize, via, voc, yolo, ClassMap, ImageLabels,
    ImageSize, LabelError, LabelFile,
};
use crate::product::check_plain_name;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Voc,
    Yolo,
    YoloSeg,
    Via,
    Labelme,
    Coco,
    Craters,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Voc => "xml",
            Format::Yolo | Format::YoloSeg => "txt",
            Format::Via | Format::Labelme | Format::Coco => "json",
            Format::Craters => "csv",
        }
    }
}

/// What reading needs beyond the files: a class map, how VIA names classes, and where image
/// sizes come from when the format does not record them (YOLO, VIA, crater lists, old LabelMe).
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub classes: Option<ClassMap>,
    pub via: ViaOptions,
    /// One size for every image.
    pub size: Option<ImageSize>,
    /// A folder holding the images, whose headers give their sizes.
    pub images: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub files_read: usize,
    pub images: usize,
    /// Objects as their format counts them (a COCO annotation of several polygons is one).
    pub objects: usize,
    pub files_written: usize,
    /// Shapes the target format cannot hold, by reason.
    pub shapes_skipped: BTreeMap<String, usize>,
    /// Shapes with points outside their image, clipped to it.
    pub shapes_clipped: usize,
    /// Shapes wholly outside their image, dropped: the file, the image and which object.
    #[serde(default)]
    pub shapes_outside: Vec<String>,
    /// Input or output files that failed, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

impl Summary {
    /// One line per shape dropped for lying outside its image, for the CLI and the job log.
    pub fn dropped_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.shapes_outside
            .iter()
            .map(|what| format!("dropped {what}"))
    }

    /// One line per failed file, naming it once (readers' errors already start with it).
    pub fn failure_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.failed.iter().map(|(path, error)| {
            let path = path.display().to_string();
            if error.starts_with(&path) {
                error.clone()
            } else {
                format!("{path}: {error}")
            }
        })
    }
}

/// Annotations to read: files or folders in one format, and how to interpret them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelSource {
    pub format: Format,
    pub inputs: Vec<PathBuf>,
    /// Class map: classes.txt (a name per line) or id,name lines. Default: the Mars
    /// classes, extended by any other class found.
    pub classes: Option<PathBuf>,
    /// Image size for formats that do not record it.
    pub size: Option<ImageSize>,
    /// Folder of the images, to read their sizes.
    pub images: Option<PathBuf>,
    /// VIA: the region attribute that holds the class, and the class of regions without one.
    pub class_attribute: Option<String>,
    pub default_class: Option<String>,
    /// Circles (craters) at this fraction of their radius.
    #[serde(default)]
    pub circle_scale: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "YOLO class ids need their names: pass --classes FILE or put classes.txt beside the labels"
    )]
    YoloWithoutClasses,
    #[error("{}: {reason}", path.display())]
    Classes { path: PathBuf, reason: String },
    #[error("no {format:?} annotation files in {inputs:?}")]
    NoFiles {
        format: Format,
        inputs: Vec<PathBuf>,
    },
}

/// What was read: the annotations, the class map settled on, and the classes that map had
/// to be extended with (not among the Mars classes).
pub struct Loaded {
    pub images: Vec<ImageLabels>,
    pub classes: ClassMap,
    pub added: Vec<String>,
}

impl LabelSource {
    /// Reads every input (failures go to `summary`) and settles the class map: the one
    /// given, or the Mars classes plus any other class met.
    pub fn load(&self, summary: &mut Summary) -> Result<Loaded, SourceError> {
        // YOLO ids mean nothing without their names: use the classes.txt beside the labels.
        let beside = || {
            self.inputs.iter().find_map(|i| {
                let folder = if i.is_dir() { i.as_path() } else { i.parent()? };
                Some(folder.join("classes.txt")).filter(|p| p.is_file())
            })
        };
        let class_file = match (&self.classes, self.format) {
            (Some(path), _) => Some(path.clone()),
            (None, Format::Yolo | Format::YoloSeg) => {
                Some(beside().ok_or(SourceError::YoloWithoutClasses)?)
            }
            (None, _) => None,
        };
        let given = match &class_file {
            Some(path) => {
                let problem = |reason: String| SourceError::Classes {
                    path: path.clone(),
                    reason,
                };
                let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
                Some(
                    ClassMap::parse(&path.display().to_string(), &text)
                        .map_err(|e| problem(e.to_string()))?,
                )
            }
            None => None,
        };
        let options = ReadOptions {
            classes: Some(given.clone().unwrap_or_else(ClassMap::mars)),
            via: ViaOptions {
                class_attribute: self.class_attribute.clone(),
                default_class: self.default_class.clone(),
            },
            size: self.size,
            images: self.images.clone(),
        };
        let files = input_files(&self.inputs, self.format);
        if files.is_empty() {
            return Err(SourceError::NoFiles {
                format: self.format,
                inputs: self.inputs.clone(),
            });
        }
        let (mut images, file_maps) = read_all(self.format, &files, &options, summary);
        // A COCO file's categories are its class map, ids and all.
        let given = given.or_else(|| files_class_map(file_maps));
        if let Some(factor) = self.circle_scale {
            for labels in &mut images {
                *labels = labels.circles_scaled(factor);
            }
        }
        let (classes, added) = match given {
            Some(map) => (map, Vec::new()),
            None => {
                let mut classes = ClassMap::mars();
                let mut added = Vec::new();
                for object in images.iter().flat_map(|i| &i.objects) {
                    if classes.resolve(&object.class).is_none() {
                        classes.push(object.class.clone());
                        added.push(object.class.clone());
                    }
                }
                (classes, added)
            }
        };
        Ok(Loaded {
            images,
            classes,
            added,
        })
    }
}

/// What to make of a label source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "make", rename_all = "snake_case")]
pub enum LabelOutput {
    /// The same annotations in another format.
    Convert { to: Format, out: PathBuf },
    /// A class mask per image (and 16-bit instance masks, LabelMe's palette if asked).
    Rasterize {
        out: PathBuf,
        palette: bool,
        instances: bool,
    },
}

/// A batch of annotations to convert or rasterise: the CLI's `labels convert|rasterize`
/// and the engine's `labels` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRequest {
    pub source: LabelSource,
    pub output: LabelOutput,
}

impl LabelRequest {
    /// Reads, writes, and reports what happened (failed files are in the summary; the
    /// classes the Mars map had to be extended with come second).
    pub fn run(&self) -> Result<(Summary, Vec<String>), SourceError> {
        let mut summary = Summary::default();
        let loaded = self.source.load(&mut summary)?;
        // Every input failed: an empty annotations.json or a lone classes.txt would look like
        // a result.
        if summary.files_read == 0 {
            return Ok((summary, loaded.added));
        }
        match &self.output {
            LabelOutput::Convert { to, out } => {
                write_all(*to, &loaded.images, out, &loaded.classes, &mut summary)
            }
            LabelOutput::Rasterize {
                out,
                palette,
                instances,
            } => rasterize_all(
                &loaded.images,
                out,
                &loaded.classes,
                *palette,
                *instances,
                &mut summary,
            ),
        }
        Ok((summary, loaded.added))
    }

    pub fn out(&self) -> &Path {
        match &self.output {
            LabelOutput::Convert { out, .. } | LabelOutput::Rasterize { out, .. } => out,
        }
    }
}

/// The files given, and the files with `extension` in the folders given (not descending
/// further), each folder's in name order.
pub fn files_with_extension(inputs: &[PathBuf], extension: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|e| e.eq_ignore_ascii_case(extension))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    files
}

/// The files a batch reads. YOLO's `classes.txt` in a folder is a class map, not labels.
pub fn input_files(inputs: &[PathBuf], format: Format) -> Vec<PathBuf> {
    files_with_extension(inputs, format.extension())
        .into_iter()
        .filter(|p| inputs.contains(p) || p.file_name().is_none_or(|n| n != "classes.txt"))
        .collect()
}

fn image_size(options: &ReadOptions, near: &Path, image: &str) -> Option<ImageSize> {
    if options.size.is_some() {
        return options.size;
    }
    let name = Path::new(image).file_name()?;
    let folders = [options.images.clone(), near.parent().map(Path::to_path_buf)];
    folders.into_iter().flatten().find_map(|folder| {
        use image::ImageDecoder;
        let decoder = image::ImageReader::open(folder.join(name))
            .ok()?
            .with_guessed_format()
            .ok()?
            .into_decoder()
            .ok()?;
        let (width, height) = decoder.dimensions();
        let depth = u32::from(decoder.color_type().channel_count());
        Some(ImageSize {
            width,
            height,
            depth,
        })
    })
}

/// The image a YOLO or crater file labels: a file of the same stem among the images, else
/// `<stem>.jpg`.
fn image_for(options: &ReadOptions, path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folders = [options.images.clone(), path.parent().map(Path::to_path_buf)];
    for folder in folders.into_iter().flatten() {
        for extension in ["jpg", "jpeg", "png", "tif", "tiff", "JPG", "PNG"] {
            let candidate = format!("{stem}.{extension}");
            if folder.join(&candidate).is_file() {
                return candidate;
            }
        }
    }
    format!("{stem}.jpg")
}

/// The class map in `path` (a names list or an `id,name` CSV), or the Mars classes.
pub fn class_map(path: Option<&Path>) -> Result<ClassMap, LabelError> {
    let Some(path) = path else {
        return Ok(ClassMap::mars());
    };
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::labels::invalid(&source, format!("cannot read: {e}")))?;
    ClassMap::parse(&source, &text)
}

/// The annotations in `path` of the image at `image` (a file may label several images: the
/// one named as the image, else the only one), with the image's size.
pub fn labels_of_image(
    path: &Path,
    format: Format,
    classes: &ClassMap,
    image: &Path,
    size: ImageSize,
) -> Result<ImageLabels, LabelError> {
    // The size is given, for formats whose coordinates are fractions of it (YOLO).
    let options = ReadOptions {
        classes: Some(classes.clone()),
        size: Some(size),
        ..ReadOptions::default()
    };
    let mut images = read_file(format, path, &options)?.images;
    let name = image
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
            return Err(crate::labels::invalid(
                path.display().to_string(),
                format!("labels several images, none named {name}"),
            ))
        }
    };
    labels.size = Some(size);
    Ok(labels)
}

/// Reads one annotation file into the images it labels. Every error starts with the file.
pub fn read_file(
    format: Format,
    path: &Path,
    options: &ReadOptions,
) -> Result<LabelFile, LabelError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::labels::invalid(&source, format!("cannot read: {e}")))?;
    let mut read = parse(format, path, &source, &text, options).map_err(|error| match error {
        // A parse error says where in the text, not in which file.
        LabelError::Json { .. } | LabelError::Xml(_) => {
            crate::labels::invalid(&source, error.to_string())
        }
        other => other,
    })?;
    for labels in &mut read.images {
        if labels.size.is_none() {
            labels.size = image_size(options, path, &labels.image);
        }
        if let Some(classes) = &options.classes {
            // Classes given by number (VIA's {"anomaly": "8"}) take their names.
            for object in &mut labels.objects {
                if classes.id(&object.class).is_none() {
                    if let Some(name) = classes
                        .resolve(&object.class)
                        .and_then(|id| classes.name(id))
                    {
                        object.class = name.to_string();
                    }
                }
            }
        }
    }
    Ok(read)
}

/// The images one annotation file's text labels, in `format`.
fn parse(
    format: Format,
    path: &Path,
    source: &str,
    text: &str,
    options: &ReadOptions,
) -> Result<LabelFile, LabelError> {
    let images = match format {
        Format::Voc => vec![voc::read(source, text)?],
        Format::Yolo | Format::YoloSeg => {
            let image = image_for(options, path);
            let size = image_size(options, path, &image);
            vec![yolo::read(
                source,
                text,
                &image,
                size,
                options.classes.as_ref(),
            )?]
        }
        Format::Via => via::read(source, text, &options.via)?,
        Format::Labelme => vec![labelme::read(source, text)?],
        Format::Coco => return coco::read(source, text),
        Format::Craters => {
            let image = image_for(options, path);
            let size = image_size(options, path, &image);
            vec![craters::to_labels(
                source,
                &craters::read(source, text)?,
                &image,
                size,
            )?]
        }
    };
    Ok(LabelFile {
        images,
        classes: None,
    })
}

/// Reads every input; failures are recorded in `summary` and the rest go on. Returns the
/// images' labels and the class maps the files define themselves.
pub fn read_all(
    format: Format,
    files: &[PathBuf],
    options: &ReadOptions,
    summary: &mut Summary,
) -> (Vec<ImageLabels>, Vec<ClassMap>) {
    let mut all = Vec::new();
    let mut class_maps = Vec::new();
    for file in files {
        match read_file(format, file, options) {
            Ok(LabelFile { images, classes }) => {
                class_maps.extend(classes);
                summary.files_read += 1;
                summary.images += images.len();
                summary.objects += images.iter().map(|i| i.instances().len()).sum::<usize>();
                all.extend(images.into_iter().map(|labels| (file, labels)));
            }
            Err(error) => summary.failed.push((file.clone(), error.to_string())),
        }
    }
    for (file, labels) in &mut all {
        let clipping = clip_to_image(labels);
        summary.shapes_clipped += clipping.clipped;
        summary.shapes_outside.extend(
            clipping
                .dropped
                .into_iter()
                .map(|what| format!("{}: {}: {what}", file.display(), labels.image)),
        );
    }
    let images = all.into_iter().map(|(_, labels)| labels).collect();
    (images, class_maps)
}

/// The class map the files define (COCO categories), when every file that has categories
/// gives the same ones and id 0, if given, is the background (as labelme2coco's
/// `_background_`: masks paint class ids, and 0 is the background there); `None` otherwise
/// (the Mars classes and the names met then serve).
fn files_class_map(maps: Vec<ClassMap>) -> Option<ClassMap> {
    let mut maps = maps.into_iter().filter(|map| !map.is_empty());
    let first = maps.next()?;
    let background_at_0 = first.name(0).is_none() || first.id("background") == Some(0);
    (background_at_0 && maps.all(|map| map == first)).then_some(first)
}

/// The output name for an image's own file: its base name without extension, which must be a
/// plain name (annotation files can name any path).
fn stem(labels: &ImageLabels) -> Result<String, LabelError> {
    let stem = Path::new(&labels.image)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    check_plain_name("image name", &stem)
        .map_err(|e| crate::labels::invalid(&labels.image, e.to_string()))?;
    Ok(stem)
}

fn write_file(out: &Path, name: &str, bytes: &[u8], summary: &mut Summary) {
    let path = out.join(name);
    match crate::fsio::write_atomically(&path, bytes) {
        Ok(()) => summary.files_written += 1,
        Err(e) => summary.failed.push((path, format!("cannot write: {e}"))),
    }
}

fn skipped(summary: &mut Summary, count: usize, why: &str) {
    if count > 0 {
        *summary.shapes_skipped.entry(why.to_string()).or_default() += count;
    }
}

/// Renders one image's labels: the text, shapes dropped, and why they were.
type Render<'a> = dyn Fn(&ImageLabels) -> Result<(String, usize, &'static str), LabelError> + 'a;

/// Writes `images` in `format` under `out`.
pub fn write_all(
    format: Format,
    images: &[ImageLabels],
    out: &Path,
    classes: &ClassMap,
    summary: &mut Summary,
) {
    if let Err(e) = std::fs::create_dir_all(out) {
        summary.failed.push((out.to_path_buf(), e.to_string()));
        return;
    }
    let per_image = |summary: &mut Summary, ext: &str, render: &Render<'_>| {
        for labels in images {
            match stem(labels).and_then(|stem| Ok((stem, render(labels)?))) {
                Ok((stem, (text, dropped, why))) => {
                    write_file(out, &format!("{stem}.{ext}"), text.as_bytes(), summary);
                    skipped(summary, dropped, why);
                }
                Err(error) => summary
                    .failed
                    .push((PathBuf::from(&labels.image), error.to_string())),
            }
        }
    };
    match format {
        Format::Voc => per_image(summary, "xml", &|l| Ok((voc::write(l)?, 0, ""))),
        Format::Yolo => {
            per_image(summary, "txt", &|l| {
                Ok((yolo::write_boxes(l, classes)?, 0, ""))
            });
            write_file(out, "classes.txt", classes.to_text().as_bytes(), summary);
        }
        Format::YoloSeg => {
            per_image(summary, "txt", &|l| {
                let (text, dropped) = yolo::write_polygons(l, classes)?;
                Ok((
                    text,
                    dropped,
                    "no area for a YOLO polygon (line, point, mask)",
                ))
            });
            write_file(out, "classes.txt", classes.to_text().as_bytes(), summary);
        }
        Format::Labelme => per_image(summary, "json", &|l| Ok((labelme::write(l), 0, ""))),
        Format::Craters => per_image(summary, "csv", &|l| {
            let (text, dropped) = craters::write(l);
            Ok((text, dropped, "not a circle (crater lists hold circles)"))
        }),
        Format::Via => {
            let (text, dropped) = via::write(images, "class");
            write_file(out, "via_annotations.json", text.as_bytes(), summary);
            skipped(summary, dropped, "masks have no VIA shape");
        }
        Format::Coco => match coco::write(images, classes) {
            Ok((text, dropped)) => {
                write_file(out, "annotations.json", text.as_bytes(), summary);
                skipped(
                    summary,
                    dropped,
                    "no area for a COCO segmentation (line, point)",
                );
            }
            Err(error) => summary
                .failed
                .push((out.join("annotations.json"), error.to_string())),
        },
    }
}

fn png_bytes(
    width: u32,
    height: u32,
    pixels: &[u8],
    depth: png::BitDepth,
    palette: Option<Vec<u8>>,
) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_depth(depth);
    match palette {
        Some(palette) => {
            encoder.set_color(png::ColorType::Indexed);
            encoder.set_palette(palette);
        }
        None => encoder.set_color(png::ColorType::Grayscale),
    }
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(out)
}

/// Writes `<stem>.png` (class ids, optionally with LabelMe's palette) and, when asked,
/// `<stem>.instances.png` (16-bit object numbers) for every image.
pub fn rasterize_all(
    images: &[ImageLabels],
    out: &Path,
    classes: &ClassMap,
    palette: bool,
    instances: bool,
    summary: &mut Summary,
) {
    if let Err(e) = std::fs::create_dir_all(out) {
        summary.failed.push((out.to_path_buf(), e.to_string()));
        return;
    }
    let colours: Option<Vec<u8>> = palette.then(|| {
        rasterize::palette(classes.len().max(256))
            .into_iter()
            .take(256)
            .flatten()
            .collect()
    });
    for labels in images {
        let result =
            stem(labels).and_then(|stem| Ok((stem, rasterize::semantic(labels, classes)?)));
        let (stem, mask) = match result {
            Ok(done) => done,
            Err(error) => {
                summary
                    .failed
                    .push((PathBuf::from(&labels.image), error.to_string()));
                continue;
            }
        };
        match png_bytes(
            mask.width,
            mask.height,
            &mask.pixels,
            png::BitDepth::Eight,
            colours.clone(),
        ) {
            Ok(bytes) => write_file(out, &format!("{stem}.png"), &bytes, summary),
            Err(e) => summary
                .failed
                .push((out.join(format!("{stem}.png")), e.to_string())),
        }
        if instances {
            match rasterize::instances(labels) {
                Ok(raster) => {
                    let bytes: Vec<u8> =
                        raster.pixels.iter().flat_map(|v| v.to_be_bytes()).collect();
                    match png_bytes(
                        raster.width,
                        raster.height,
                        &bytes,
                        png::BitDepth::Sixteen,
                        None,
                    ) {
                        Ok(png) => write_file(out, &format!("{stem}.instances.png"), &png, summary),
                        Err(e) => summary
                            .failed
                            .push((out.join(format!("{stem}.instances.png")), e.to_string())),
                    }
                }
                Err(error) => summary
                    .failed
                    .push((PathBuf::from(&labels.image), error.to_string())),
            }
        }
    }
}

/// Objects per class and a histogram of object sizes (the larger side of the box, in
/// pixels, by powers of two).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub per_class: BTreeMap<String, usize>,
    pub per_shape: BTreeMap<String, usize>,
    /// "<=2", "<=4", ... "<=1024", ">1024" -> count.
    pub sizes: BTreeMap<u32, usize>,
}

pub fn stats(images: &[ImageLabels]) -> Stats {
    let mut stats = Stats::default();
    for object in images.iter().flat_map(|i| &i.objects) {
        *stats.per_class.entry(object.class.clone()).or_default() += 1;
        *stats
            .per_shape
            .entry(object.shape.kind().to_string())
            .or_default() += 1;
        let [x0, y0, x1, y1] = object.shape.bbox();
        let side = (x1 - x0).max(y1 - y0).max(1.0);
        let bucket = (side.log2().ceil() as u32).clamp(1, 11);
        *stats.sizes.entry(1 << bucket).or_default() += 1;
    }
    stats
}

/// A class-id mask from a PNG: 8-bit grayscale, or paletted (the indices, not the colours).
pub fn read_mask(path: &Path) -> Result<rasterize::Raster<u8>, LabelError> {
    let source = path.display().to_string();
    let fail = |problem: String| crate::labels::invalid(&source, problem);
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder
        .read_info()
        .map_err(|e| fail(format!("not a PNG: {e}")))?;
    let info = reader.info();
    if info.bit_depth != png::BitDepth::Eight
        || !matches!(
            info.color_type,
            png::ColorType::Grayscale | png::ColorType::Indexed
        )
    {
        return Err(fail(format!(
            "a class mask is 8-bit grayscale or paletted, this is {:?} {:?}",
            info.color_type, info.bit_depth
        )));
    }
    let mut pixels = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or_else(|| fail("image too large".into()))?
    ];
    let frame = reader
        .next_frame(&mut pixels)
        .map_err(|e| fail(format!("damaged PNG: {e}")))?;
    pixels.truncate(frame.buffer_size());
    Ok(rasterize::Raster {
        width: frame.width,
        height: frame.height,
        pixels,
    })
}

/// Masks back into labelled polygons, one image per mask (named after it, `.png`).
pub fn masks_to_labels(
    files: &[PathBuf],
    classes: &ClassMap,
    tolerance: f64,
    summary: &mut Summary,
) -> Vec<ImageLabels> {
    let mut images = Vec::new();
    for file in files {
        let mask = match read_mask(file) {
            Ok(mask) => mask,
            Err(error) => {
                summary.failed.push((file.clone(), error.to_string()));
                continue;
            }
        };
        summary.files_read += 1;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = ImageSize {
            width: mask.width,
            height: mask.height,
            depth: 1,
        };
        let mut labels = ImageLabels::new(name, Some(size));
        for region in crate::labels::polygonize::regions(&mask, tolerance) {
            let class = classes
                .name(region.value as usize)
                .map_or_else(|| region.value.to_string(), str::to_string);
            labels.objects.push(crate::labels::Object::new(
                class,
                crate::labels::Shape::Polygon(region.outline),
            ));
        }
        summary.images += 1;
        summary.objects += labels.objects.len();
        images.push(labels);
    }
    images
}
