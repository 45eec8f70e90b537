//! Values in the catalog: a versioned envelope around postcard.
//!
//! Every value starts with its record version (u16, big-endian) so a future build can tell
//! old layouts from new ones and migrate them, instead of misreading bytes.

use super::CatalogError;
use crate::lineage::Artifact;
use crate::product::{Product, ProductFile};
use serde::{de::DeserializeOwned, Serialize};

/// A type stored as a catalog value.
pub trait Record: Sized {
    /// The sled tree that holds this entity.
    const TREE: &'static str;
    /// Bumped whenever the serialised layout changes; a migration rewrites older records.
    const VERSION: u16;

    /// The shape actually serialised, when it differs from the record's own.
    type Stored<'a>: Serialize + DeserializeOwned
    where
        Self: 'a;

    fn to_stored(&self) -> Self::Stored<'_>;
    fn from_stored(stored: Self::Stored<'_>) -> Result<Self, String>;
}

impl Record for Product {
    const TREE: &'static str = "products";
    const VERSION: u16 = 1;

    type Stored<'a> = std::borrow::Cow<'a, Product>;

    fn to_stored(&self) -> Self::Stored<'_> {
        std::borrow::Cow::Borrowed(self)
    }

    fn from_stored(stored: Self::Stored<'_>) -> Result<Self, String> {
        Ok(stored.into_owned())
    }
}

/// A product's files, stored together under the product's id.
///
/// Their URLs share long prefixes (`https://hirise.lpl.arizona.edu/PDS/EXTRAS/RDR/ESP/
/// ORB_016400_016499/ESP_016430_2095/ESP_016430_2095_...`), so each URL is stored as the
/// length it shares with the previous file's URL plus the rest. That halves the record, and
/// bytes written are what an import into sled pays for.
impl Record for Vec<ProductFile> {
    const TREE: &'static str = "product_files";
    const VERSION: u16 = 1;

    type Stored<'a> = (Vec<u16>, Vec<ProductFile>);

    fn to_stored(&self) -> Self::Stored<'_> {
        let mut shared = Vec::with_capacity(self.len());
        let mut files = self.clone();
        let mut previous = "";
        for (file, original) in files.iter_mut().zip(self) {
            let common = previous
                .bytes()
                .zip(original.url.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            // Cut on a character boundary and keep the count within u16.
            let mut keep = common.min(u16::MAX as usize);
            while !original.url.is_char_boundary(keep) {
                keep -= 1;
            }
            shared.push(keep as u16);
            file.url = original.url[keep..].to_string();
            previous = &original.url;
        }
        (shared, files)
    }

    fn from_stored((shared, mut files): Self::Stored<'_>) -> Result<Self, String> {
        if shared.len() != files.len() {
            return Err(format!(
                "{} prefixes for {} files",
                shared.len(),
                files.len()
            ));
        }
        let mut previous = String::new();
        for (file, keep) in files.iter_mut().zip(shared) {
            let prefix = previous
                .get(..keep as usize)
                .ok_or_else(|| format!("file {}: shared prefix {keep} is too long", file.name))?;
            file.url = format!("{prefix}{}", file.url);
            previous.clone_from(&file.url);
        }
        Ok(files)
    }
}

impl Record for Artifact {
    const TREE: &'static str = "artifacts";
    const VERSION: u16 = 1;

    type Stored<'a> = std::borrow::Cow<'a, Artifact>;

    fn to_stored(&self) -> Self::Stored<'_> {
        std::borrow::Cow::Borrowed(self)
    }

    fn from_stored(stored: Self::Stored<'_>) -> Result<Self, String> {
        Ok(stored.into_owned())
    }
}

pub fn encode<R: Record>(record: &R) -> Result<Vec<u8>, CatalogError> {
    let mut out = R::VERSION.to_be_bytes().to_vec();
    postcard::to_io(&record.to_stored(), &mut out).map_err(|e| CatalogError::Encode {
        tree: R::TREE,
        reason: e.to_string(),
    })?;
    Ok(out)
}

pub fn decode<R: Record>(key: &[u8], bytes: &[u8]) -> Result<R, CatalogError> {
    let corrupt = |reason: String| CatalogError::Corrupt {
        tree: R::TREE,
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        reason,
    };
    let Some((version, payload)) = bytes.split_first_chunk::<2>() else {
        return Err(corrupt(format!(
            "value is {} byte(s), too short",
            bytes.len()
        )));
    };
    let version = u16::from_be_bytes(*version);
    if version != R::VERSION {
        return Err(corrupt(format!(
            "record version {version}, this build reads version {}",
            R::VERSION
        )));
    }
    let stored = postcard::from_bytes(payload).map_err(|e| corrupt(e.to_string()))?;
    R::from_stored(stored).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, url: &str) -> ProductFile {
        ProductFile {
            kbytes: Some(3),
            ..ProductFile::remote(name, "Browse", url)
        }
    }

    #[test]
    fn file_lists_round_trip_with_shared_url_prefixes() {
        let files = vec![
            file(
                "A.JPG",
                "https://hirise.lpl.arizona.edu/PDS/EXTRAS/RDR/ESP/A.jpg",
            ),
            file(
                "B.JPG",
                "https://hirise.lpl.arizona.edu/PDS/EXTRAS/RDR/ESP/B.jpg",
            ),
            file("C.JP2", "https://hirise.lpl.arizona.edu/PDS/RDR/ESP/C.JP2"),
            file("D.KML", "http://ode.rsl.wustl.edu/mars/d.kml"),
            file("É.KML", "http://ode.rsl.wustl.edu/mars/é.kml"),
            file("F.KML", "http://ode.rsl.wustl.edu/mars/è.kml"),
        ];
        let bytes = encode(&files).unwrap();
        assert_eq!(decode::<Vec<ProductFile>>(b"k", &bytes).unwrap(), files);
        let plain = postcard::to_stdvec(&files).unwrap().len();
        assert!(bytes.len() + 100 < plain, "{} vs {plain}", bytes.len());
    }

    #[test]
    fn damaged_values_are_reported_not_misread() {
        let files = vec![file("A.JPG", "https://x/a.jpg")];
        let mut bytes = encode(&files).unwrap();
        let error = decode::<Vec<ProductFile>>(b"ESP_1", &bytes[..1]).unwrap_err();
        assert!(error.to_string().contains("product_files/ESP_1"), "{error}");
        bytes[1] = 9;
        let error = decode::<Vec<ProductFile>>(b"ESP_1", &bytes).unwrap_err();
        assert!(error.to_string().contains("record version 9"), "{error}");
        let truncated = encode(&files).unwrap();
        let error = decode::<Vec<ProductFile>>(b"ESP_1", &truncated[..truncated.len() - 3]);
        assert!(error.is_err());
    }
}
