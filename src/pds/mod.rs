//! PDS3 products: PVL labels (attached or detached), IMG rasters, map projections.

pub mod img;
pub mod pvl;

pub use img::{ImageLayout, ImgError, ImgRaster, MapProjection};
pub use pvl::{parse, Label, PvlError, Value};
