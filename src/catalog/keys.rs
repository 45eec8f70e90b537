//! Keys of the records and of the secondary indexes. Numbers are big-endian so that sled's
//! byte order is numeric order; strings are separated by a NUL, which names never contain.

use crate::geo::LonLatBox;
use crate::lineage::{ArtifactKind, Input};
use crate::product::FileState;

pub const SEP: u8 = 0;

/// `artifacts`: kind NUL name.
pub fn artifact_key(kind: ArtifactKind, name: &str) -> Vec<u8> {
    let mut key = kind.as_str().as_bytes().to_vec();
    key.push(SEP);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The part of an `idx_made_from` key that names the input: `p` pdsid, `f` path, or `a`
/// kind NUL name; then NUL.
pub fn input_prefix(input: &Input) -> Vec<u8> {
    let mut key = match input {
        Input::Product(pdsid) => [b"p", pdsid.as_bytes()].concat(),
        Input::File(path) => [b"f", path.as_os_str().as_encoded_bytes()].concat(),
        Input::Artifact(kind, name) => [b"a".as_slice(), &artifact_key(*kind, name)].concat(),
    };
    key.push(SEP);
    key
}

/// `idx_made_from`: the input's prefix, then the artefact's key.
pub fn made_from_key(input: &Input, kind: ArtifactKind, name: &str) -> Vec<u8> {
    [input_prefix(input), artifact_key(kind, name)].concat()
}

pub fn product_key(pdsid: &str) -> Vec<u8> {
    pdsid.as_bytes().to_vec()
}

/// `instrument NUL type NUL pdsid`.
pub fn instrument_key(instrument: &str, product_type: &str, pdsid: &str) -> Vec<u8> {
    let mut key = instrument_prefix(instrument, Some(product_type));
    key.extend_from_slice(pdsid.as_bytes());
    key
}

pub fn instrument_prefix(instrument: &str, product_type: Option<&str>) -> Vec<u8> {
    let mut key = instrument.as_bytes().to_vec();
    key.push(SEP);
    if let Some(product_type) = product_type {
        key.extend_from_slice(product_type.as_bytes());
        key.push(SEP);
    }
    key
}

/// Splits an instrument index key back into (instrument, type, pdsid).
pub fn split_instrument_key(key: &[u8]) -> Option<(&str, &str, &str)> {
    let mut parts = key.splitn(3, |b| *b == SEP);
    let instrument = std::str::from_utf8(parts.next()?).ok()?;
    let product_type = std::str::from_utf8(parts.next()?).ok()?;
    let pdsid = std::str::from_utf8(parts.next()?).ok()?;
    Some((instrument, product_type, pdsid))
}

/// `state-code pdsid`.
pub fn state_key(state: FileState, pdsid: &str) -> Vec<u8> {
    let mut key = vec![state.code()];
    key.extend_from_slice(pdsid.as_bytes());
    key
}

/// `state-code pdsid NUL file-name`, kept only for files that are not plain remote.
pub fn file_state_key(state: FileState, pdsid: &str, name: &str) -> Vec<u8> {
    let mut key = vec![state.code()];
    key.extend_from_slice(pdsid.as_bytes());
    key.push(SEP);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The spatial index: a fixed hierarchy of "loose" lon/lat grids. A product goes in the
/// finest grid whose cells are at least as large as its box, under the one cell that holds the
/// box's south-west corner; boxes too large for every grid (polar caps, global mosaics) go in
/// one planet-sized cell. One entry per product keeps imports cheap.
///
/// A box of at most one cell can reach one cell north and east of its corner's cell, so a
/// query searches, in each grid, the window from one cell size south-west of its own box to its
/// north-east corner. Within a grid row that window is one contiguous key range (two when it
/// crosses 0/360), so a query costs one range scan per grid row it covers.
///
/// Key: `level u8, row u16, col u16, pdsid`; value: the product's box (4 x f64), so a query
/// filters candidates exactly without decoding products.
pub mod spatial {
    use super::LonLatBox;

    /// Cell sizes in degrees; level `CELL_DEGREES.len()` is the single planet cell.
    pub const CELL_DEGREES: [f64; 4] = [0.5, 2.0, 8.0, 32.0];
    pub const LEVELS: u8 = CELL_DEGREES.len() as u8 + 1;

    fn cell_degrees(level: u8) -> Option<f64> {
        CELL_DEGREES.get(level as usize).copied()
    }

    fn grid_size(level: u8) -> (u16, u16) {
        match cell_degrees(level) {
            Some(size) => ((180.0 / size).ceil() as u16, (360.0 / size).ceil() as u16),
            None => (1, 1),
        }
    }

    pub fn level_for(bbox: &LonLatBox) -> u8 {
        CELL_DEGREES
            .iter()
            .position(|size| bbox.lon_span() <= *size && bbox.lat_span() <= *size)
            .map_or(LEVELS - 1, |level| level as u8)
    }

    fn row(level: u8, lat: f64) -> u16 {
        let (rows, _) = grid_size(level);
        cell_degrees(level).map_or(0, |size| (((lat + 90.0) / size) as u16).min(rows - 1))
    }

    fn col(level: u8, lon: f64) -> u16 {
        let (_, cols) = grid_size(level);
        cell_degrees(level).map_or(0, |size| ((lon / size) as u16).min(cols - 1))
    }

    /// The area whose cells, at `level`, can hold boxes that meet `query`.
    fn search_window(level: u8, query: &LonLatBox) -> LonLatBox {
        let Some(size) = cell_degrees(level) else {
            return *query;
        };
        let (west, east) = if query.lon_span() + size >= 360.0 {
            (0.0, 360.0)
        } else {
            ((query.west - size).rem_euclid(360.0), query.east)
        };
        LonLatBox {
            west,
            east,
            south: (query.south - size).max(-90.0),
            north: query.north,
        }
    }

    /// For each grid row a query must search at `level`, the inclusive column ranges there.
    pub fn row_spans(level: u8, query: &LonLatBox) -> Vec<(u16, u16, u16)> {
        let window = search_window(level, query);
        let mut spans = Vec::new();
        for r in row(level, window.south)..=row(level, window.north) {
            for (west, east) in window.lon_intervals() {
                spans.push((r, col(level, west), col(level, east)));
            }
        }
        spans
    }

    pub fn cell_prefix(level: u8, row: u16, col: u16) -> [u8; 5] {
        let [r0, r1] = row.to_be_bytes();
        let [c0, c1] = col.to_be_bytes();
        [level, r0, r1, c0, c1]
    }

    /// The index key of a product with this box.
    pub fn key(bbox: &LonLatBox, pdsid: &str) -> Vec<u8> {
        let level = level_for(bbox);
        let mut key = cell_prefix(level, row(level, bbox.south), col(level, bbox.west)).to_vec();
        key.extend_from_slice(pdsid.as_bytes());
        key
    }

    pub fn pdsid_of(key: &[u8]) -> Option<&str> {
        std::str::from_utf8(key.get(5..)?).ok()
    }

    pub fn encode_box(bbox: &LonLatBox) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, value) in out
            .chunks_exact_mut(8)
            .zip([bbox.west, bbox.east, bbox.south, bbox.north])
        {
            chunk.copy_from_slice(&value.to_be_bytes());
        }
        out
    }

    pub fn decode_box(bytes: &[u8]) -> Option<LonLatBox> {
        if bytes.len() != 32 {
            return None;
        }
        let value = |i: usize| f64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        Some(LonLatBox {
            west: value(0),
            east: value(1),
            south: value(2),
            north: value(3),
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn b(w: f64, e: f64, s: f64, n: f64) -> LonLatBox {
            LonLatBox::new(w, e, s, n).unwrap()
        }

        fn cell_of(key: &[u8]) -> (u8, u16, u16) {
            (
                key[0],
                u16::from_be_bytes([key[1], key[2]]),
                u16::from_be_bytes([key[3], key[4]]),
            )
        }

        #[test]
        fn products_sit_in_the_finest_grid_that_fits_them() {
            let hirise = b(72.65, 72.74, 28.82, 29.303);
            assert_eq!(cell_of(&key(&hirise, "P")), (0, 237, 145));
            let ctx = b(286.0, 287.5, 20.0, 27.0);
            assert_eq!(cell_of(&key(&ctx, "P")).0, 2);
            let polar = b(0.0, 360.0, 85.0, 90.0);
            assert_eq!(key(&polar, "P"), b"\x04\0\0\0\0P".to_vec());
        }

        #[test]
        fn the_search_window_reaches_boxes_whose_corner_is_outside_the_query() {
            // A product whose corner cell is west of the query but which reaches into it.
            let product = b(99.8, 100.2, 0.0, 0.1);
            let (level, row, col) = cell_of(&key(&product, "P"));
            let query = b(100.1, 101.0, 0.05, 0.5);
            assert!(row_spans(level, &query)
                .iter()
                .any(|&(r, first, last)| r == row && (first..=last).contains(&col)));
        }

        #[test]
        fn windows_across_the_meridian_search_both_sides() {
            let query = b(0.1, 0.3, 0.0, 0.2);
            let spans = row_spans(0, &query);
            assert!(spans
                .iter()
                .any(|&(_, first, last)| first == 719 && last == 719));
            assert!(spans.iter().any(|&(_, first, _)| first == 0));
        }

        #[test]
        fn boxes_round_trip_through_index_values() {
            let bbox = b(359.97, 0.044, -0.239, 0.214);
            assert_eq!(decode_box(&encode_box(&bbox)), Some(bbox));
            assert_eq!(decode_box(&[1, 2, 3]), None);
        }
    }
}
