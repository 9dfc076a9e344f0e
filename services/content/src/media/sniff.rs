//! What a file is, decided from its first bytes (never its name or the type the client
//! declared), and the small structural check MP4 files get since they are stored as they are.

use serde::{Deserialize, Serialize};

/// An accepted media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `image/jpeg`.
    Jpeg,
    /// `image/png`.
    Png,
    /// `image/webp`.
    Webp,
    /// `video/mp4`.
    Mp4,
}

/// Image or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MediaKind {
    /// A still image (JPEG, PNG, WebP); it gets resized WebP variants.
    Image,
    /// A video (MP4), stored as uploaded.
    Video,
}

impl MediaKind {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "IMAGE",
            Self::Video => "VIDEO",
        }
    }

    /// From the database spelling.
    pub fn from_db(value: &str) -> Option<Self> {
        match value {
            "IMAGE" => Some(Self::Image),
            "VIDEO" => Some(Self::Video),
            _ => None,
        }
    }
}

/// MP4 major brands we accept: ISO base media, MP4 v1/v2, AVC, DASH and Apple's M4V. QuickTime
/// (`qt  `) and HEIF images (`heic`, `mif1`, ...) share the container but are not MP4 video.
const MP4_BRANDS: [&[u8; 4]; 14] = [
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"mp41", b"mp42", b"avc1",
    b"dash", b"M4V ", b"mmp4", b"msnv",
];

impl MediaType {
    /// Recognises an accepted type from the file's first bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else if bytes.len() >= 12
            && &bytes[4..8] == b"ftyp"
            && MP4_BRANDS.iter().any(|brand| &bytes[8..12] == *brand)
        {
            Some(Self::Mp4)
        } else {
            None
        }
    }

    /// The media type, e.g. `image/jpeg`.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Mp4 => "video/mp4",
        }
    }

    /// The file extension of stored originals.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Mp4 => "mp4",
        }
    }

    /// Image or video.
    pub fn kind(self) -> MediaKind {
        match self {
            Self::Mp4 => MediaKind::Video,
            _ => MediaKind::Image,
        }
    }

    /// The `image` crate's format, for images.
    pub fn image_format(self) -> Option<image::ImageFormat> {
        match self {
            Self::Jpeg => Some(image::ImageFormat::Jpeg),
            Self::Png => Some(image::ImageFormat::Png),
            Self::Webp => Some(image::ImageFormat::WebP),
            Self::Mp4 => None,
        }
    }

    /// The accepted media types, for messages.
    pub const ACCEPTED: &'static str = "image/jpeg, image/png, image/webp, video/mp4";
}

/// Whether a JPEG runs from its start-of-image to an end-of-image marker through well-formed
/// segments. Decoders fill a truncated JPEG with grey rather than failing, so this is how an
/// incomplete upload is caught. Bytes after the end marker (some cameras append trailers) and
/// embedded thumbnails (inside APP segments, skipped by their length) are fine.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let len = bytes.len();
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let segment_end = |at: usize| -> Option<usize> {
        let length = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        (length >= 2 && at + length <= len).then_some(at + length)
    };
    let mut i = 2;
    loop {
        if bytes.get(i) != Some(&0xFF) {
            return false;
        }
        while bytes.get(i) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        let Some(&marker) = bytes.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => {}
            0xDA => {
                let Some(end) = segment_end(i) else {
                    return false;
                };
                i = end;
                // Entropy-coded data: 0xFF is followed by a stuffed 0x00 or a restart marker,
                // anything else is the next marker.
                loop {
                    if i + 1 >= len {
                        return false;
                    }
                    if bytes[i] == 0xFF {
                        match bytes[i + 1] {
                            0x00 | 0xD0..=0xD7 => i += 2,
                            0xFF => i += 1,
                            _ => break,
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            _ => {
                let Some(end) = segment_end(i) else {
                    return false;
                };
                i = end;
            }
        }
    }
}

/// Why an MP4 file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp4Error {
    /// A box runs past the end of the file (an incomplete upload).
    #[error("the video is truncated: a `{0}` box runs past the end of the file")]
    Truncated(String),
    /// A box header is impossible.
    #[error("the video is malformed: {0}")]
    Malformed(&'static str),
    /// There is no `moov` box, so no player can read it.
    #[error("the video has no `moov` box (no track information)")]
    NoMovie,
}

/// Pixel size of a video track, when the file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoInfo {
    /// Width and height of the first visual track, if any.
    pub dimensions: Option<(u32, u32)>,
}

struct Mp4Box<'a> {
    kind: [u8; 4],
    body: &'a [u8],
}

/// Splits `data` into its boxes, refusing boxes that do not fit.
fn boxes(mut data: &[u8]) -> Result<Vec<Mp4Box<'_>>, Mp4Error> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 8 {
            return Err(Mp4Error::Truncated("(header)".to_owned()));
        }
        let size32 = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        let kind = [data[4], data[5], data[6], data[7]];
        let (header, size) = match size32 {
            // A 64-bit size follows the type.
            1 => {
                if data.len() < 16 {
                    return Err(Mp4Error::Truncated(String::from_utf8_lossy(&kind).into()));
                }
                let mut large = [0u8; 8];
                large.copy_from_slice(&data[8..16]);
                (
                    16usize,
                    usize::try_from(u64::from_be_bytes(large)).unwrap_or(usize::MAX),
                )
            }
            // The box runs to the end of the file.
            0 => (8, data.len()),
            n => (8, usize::try_from(n).unwrap_or(usize::MAX)),
        };
        if size < header {
            return Err(Mp4Error::Malformed("a box is smaller than its header"));
        }
        if size > data.len() {
            return Err(Mp4Error::Truncated(String::from_utf8_lossy(&kind).into()));
        }
        out.push(Mp4Box {
            kind,
            body: &data[header..size],
        });
        data = &data[size..];
    }
    Ok(out)
}

/// Checks an MP4's top-level structure (every box fits the file, a `moov` box exists) and reads
/// the first visual track's dimensions from its `tkhd` box.
pub fn inspect_mp4(bytes: &[u8]) -> Result<VideoInfo, Mp4Error> {
    let top = boxes(bytes)?;
    let moov = top
        .iter()
        .find(|b| &b.kind == b"moov")
        .ok_or(Mp4Error::NoMovie)?;
    // Dimensions are a nicety: a moov we cannot walk still leaves the file playable by others.
    let dimensions = boxes(moov.body).ok().and_then(|tracks| {
        tracks
            .iter()
            .filter(|b| &b.kind == b"trak")
            .filter_map(|trak| boxes(trak.body).ok())
            .flat_map(|children| children.into_iter().filter(|b| &b.kind == b"tkhd"))
            .find_map(|tkhd| track_dimensions(tkhd.body))
    });
    Ok(VideoInfo { dimensions })
}

/// Width and height (16.16 fixed point, the last 8 bytes of `tkhd`), when non-zero.
fn track_dimensions(tkhd: &[u8]) -> Option<(u32, u32)> {
    // version 0: 84 bytes, version 1: 96 bytes (64-bit times).
    let expected = match tkhd.first()? {
        0 => 84,
        1 => 96,
        _ => return None,
    };
    if tkhd.len() < expected {
        return None;
    }
    let at = |i: usize| u32::from_be_bytes([tkhd[i], tkhd[i + 1], tkhd[i + 2], tkhd[i + 3]]);
    let width = at(expected - 8) >> 16;
    let height = at(expected - 4) >> 16;
    (width > 0 && height > 0).then_some((width, height))
}

/// A minimal MP4 (ftyp + moov with one video track of `width`×`height` + mdat), for tests.
#[cfg(test)]
pub(crate) fn minimal_mp4(width: u32, height: u32) -> Vec<u8> {
    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(body.len() + 8)
            .unwrap_or(0)
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }
    let mut tkhd = vec![0u8; 84];
    tkhd[76..80].copy_from_slice(&(width << 16).to_be_bytes());
    tkhd[80..84].copy_from_slice(&(height << 16).to_be_bytes());
    let trak = mp4_box(b"trak", &mp4_box(b"tkhd", &tkhd));
    let moov = mp4_box(b"moov", &[mp4_box(b"mvhd", &[0u8; 100]), trak].concat());
    let mut ftyp_body = b"isom".to_vec();
    ftyp_body.extend_from_slice(&[0, 0, 2, 0]);
    ftyp_body.extend_from_slice(b"isomiso2avc1mp41");
    [
        mp4_box(b"ftyp", &ftyp_body),
        moov,
        mp4_box(b"mdat", &[0u8; 64]),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_type_comes_from_the_magic_bytes() {
        assert_eq!(
            MediaType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Some(MediaType::Jpeg)
        );
        assert_eq!(
            MediaType::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(MediaType::Png)
        );
        assert_eq!(
            MediaType::sniff(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(MediaType::Webp)
        );
        assert_eq!(
            MediaType::sniff(&minimal_mp4(640, 360)),
            Some(MediaType::Mp4)
        );
    }

    #[test]
    fn other_types_are_not_recognised() {
        for bytes in [
            &b"GIF89a\x01\0\x01\0"[..],
            b"%PDF-1.7\n",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"\0\0\0\x18ftypqt  \0\0\0\0qt  ",
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
            b"RIFF\x10\0\0\0WAVEfmt ",
            b"MZ\x90\0",
            b"",
            b"\xFF\xD8",
        ] {
            assert_eq!(MediaType::sniff(bytes), None, "{bytes:?}");
        }
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = image::DynamicImage::new_rgb8(width, height);
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_whole_jpeg_is_complete_even_with_a_trailer() {
        let whole = jpeg(64, 48);
        assert!(jpeg_is_complete(&whole));
        let mut trailer = whole.clone();
        trailer.extend_from_slice(b"SEFT trailer data");
        assert!(jpeg_is_complete(&trailer));
    }

    #[test]
    fn a_cut_jpeg_is_not_complete() {
        let whole = jpeg(64, 48);
        for cut in [whole.len() - 2, whole.len() / 2, 40, 3, 0] {
            assert!(!jpeg_is_complete(&whole[..cut]), "cut at {cut}");
        }
        let mut lying = vec![0xFF, 0xD8, 0xFF, 0xE0];
        lying.extend_from_slice(b"not a jpeg");
        assert!(!jpeg_is_complete(&lying));
    }

    #[test]
    fn a_well_formed_mp4_reports_its_track_size() {
        let info = inspect_mp4(&minimal_mp4(1920, 1080)).unwrap();
        assert_eq!(info.dimensions, Some((1920, 1080)));
    }

    #[test]
    fn a_truncated_mp4_is_refused() {
        let mp4 = minimal_mp4(640, 360);
        let cut = &mp4[..mp4.len() - 10];
        assert!(matches!(inspect_mp4(cut), Err(Mp4Error::Truncated(_))));
    }

    #[test]
    fn an_mp4_without_a_movie_box_is_refused() {
        let mp4 = minimal_mp4(640, 360);
        let ftyp_len =
            usize::try_from(u32::from_be_bytes([mp4[0], mp4[1], mp4[2], mp4[3]])).unwrap();
        assert_eq!(inspect_mp4(&mp4[..ftyp_len]), Err(Mp4Error::NoMovie));
    }

    #[test]
    fn a_box_smaller_than_its_header_is_refused() {
        let mut mp4 = minimal_mp4(640, 360);
        mp4[0..4].copy_from_slice(&4u32.to_be_bytes());
        assert!(matches!(inspect_mp4(&mp4), Err(Mp4Error::Malformed(_))));
    }
}
