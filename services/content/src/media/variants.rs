//! Image decoding and the resized WebP variants. Everything here is CPU-bound and synchronous:
//! callers run [`process`] on the blocking pool (`spawn_blocking`), never on the async runtime.
//!
//! # Decisions
//! - **Sizes bound the longest side**: `large` 1920 px, `medium` 800 px, `thumb` 300 px, aspect
//!   ratio kept (4000×3000 → 1920×1440 / 800×600 / 300×225; a 3000×4000 portrait → 1440×1920 /
//!   600×800 / 225×300). Bounding the width alone would make portrait variants far taller than
//!   the layouts that show them.
//! - **Never upscaled**: an image already within a bound is re-encoded at its own size, so every
//!   asset has all three variants and clients need no fallbacks.
//! - **Orientation**: the EXIF orientation is applied to the pixels before resizing; the
//!   variants carry no metadata at all (re-encoding drops EXIF, GPS, ICC and XMP).
//! - **Lossy WebP** at quality 80 through libwebp (the `image` crate only writes lossless WebP);
//!   alpha is kept for images that have it.
//! - **Cascade**: each variant is resized from the previous (larger) one, which costs a fraction
//!   of resizing the original three times and looks the same at these ratios.
//! - **Bombs**: the decoder gets strict [`image::Limits`] (dimensions, allocation) and the pixel
//!   count is checked before any pixel is decoded, so a tiny file declaring a huge image is
//!   refused without allocating it.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, metadata::Orientation};

use super::sniff::MediaType;

/// A variant's name and the bound of its longest side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantName {
    /// 1920 px.
    Large,
    /// 800 px.
    Medium,
    /// 300 px.
    Thumb,
}

impl VariantName {
    /// Largest first (the cascade order).
    pub const ALL: [VariantName; 3] = [Self::Large, Self::Medium, Self::Thumb];

    /// Bound of the longest side, in pixels.
    pub fn max_side(self) -> u32 {
        match self {
            Self::Large => 1920,
            Self::Medium => 800,
            Self::Thumb => 300,
        }
    }

    /// `large`, `medium` or `thumb` (keys and JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Large => "large",
            Self::Medium => "medium",
            Self::Thumb => "thumb",
        }
    }
}

/// Decoder guards against decompression bombs.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Widest and tallest image accepted, in pixels.
    pub max_side: u32,
    /// Most pixels accepted (width × height).
    pub max_pixels: u64,
    /// Most bytes the decoder may allocate.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_side: 12_000,
            // 50 MP covers every camera the business uses (a 48 MP phone is 8064×6048).
            max_pixels: 50_000_000,
            max_alloc: 512 * 1024 * 1024,
        }
    }
}

/// One encoded variant.
#[derive(Debug, Clone)]
pub struct EncodedVariant {
    /// Which one.
    pub name: VariantName,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// The WebP file.
    pub webp: Vec<u8>,
}

/// A decoded image's upright size and its variants.
#[derive(Debug, Clone)]
pub struct ProcessedImage {
    /// Width after orientation.
    pub width: u32,
    /// Height after orientation.
    pub height: u32,
    /// `large`, `medium`, `thumb`, in that order.
    pub variants: Vec<EncodedVariant>,
}

/// Why an image could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageProblem {
    /// Larger than the decode limits allow (a decompression bomb, or simply too big).
    #[error("{0}")]
    TooLarge(String),
    /// Truncated, corrupt, or not really of the type its bytes began with.
    #[error("{0}")]
    Unreadable(String),
    /// Encoding a variant failed (our side).
    #[error("encoding a variant failed: {0}")]
    Encode(String),
}

fn classify(error: ImageError) -> ImageProblem {
    match error {
        ImageError::Limits(limit) => {
            ImageProblem::TooLarge(format!("the image exceeds the decoding limits ({limit})"))
        }
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageProblem::Unreadable("the image is truncated".to_owned())
        }
        other => ImageProblem::Unreadable(format!("the image could not be decoded ({other})")),
    }
}

/// Decodes `bytes` as `format` (the sniffed type, never a guess), applies its EXIF orientation
/// and encodes the three WebP variants at `quality` (0–100).
pub fn process(
    bytes: &[u8],
    format: MediaType,
    limits: DecodeLimits,
    quality: f32,
) -> Result<ProcessedImage, ImageProblem> {
    let image_format = format
        .image_format()
        .ok_or_else(|| ImageProblem::Unreadable("not an image".to_owned()))?;
    if format == MediaType::Jpeg && !super::sniff::jpeg_is_complete(bytes) {
        return Err(ImageProblem::Unreadable(
            "the image is truncated or malformed (no complete JPEG structure)".to_owned(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(limits.max_side);
    decode_limits.max_image_height = Some(limits.max_side);
    decode_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decode_limits);
    let mut decoder = reader.into_decoder().map_err(classify)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(ImageProblem::Unreadable(
            "the image has no pixels".to_owned(),
        ));
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageProblem::TooLarge(format!(
            "the image is {width}×{height} pixels; at most {} megapixels are accepted",
            limits.max_pixels / 1_000_000
        )));
    }
    // A missing or unreadable orientation tag means "as stored".
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(classify)?;
    image.apply_orientation(orientation);
    let image = normalise(image);
    let (width, height) = (image.width(), image.height());

    let mut variants = Vec::with_capacity(VariantName::ALL.len());
    let mut source = image;
    for name in VariantName::ALL {
        let bound = name.max_side();
        if source.width().max(source.height()) > bound {
            source = source.resize(bound, bound, FilterType::CatmullRom);
        }
        variants.push(EncodedVariant {
            name,
            width: source.width(),
            height: source.height(),
            webp: encode_webp(&source, quality)?,
        });
    }
    Ok(ProcessedImage {
        width,
        height,
        variants,
    })
}

/// 8-bit RGB, or RGBA when the image has alpha: what libwebp takes.
fn normalise(image: DynamicImage) -> DynamicImage {
    if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.into_rgb8())
    }
}

fn encode_webp(image: &DynamicImage, quality: f32) -> Result<Vec<u8>, ImageProblem> {
    let encoder = match image {
        DynamicImage::ImageRgb8(rgb) => {
            webp::Encoder::from_rgb(rgb.as_raw(), rgb.width(), rgb.height())
        }
        DynamicImage::ImageRgba8(rgba) => {
            webp::Encoder::from_rgba(rgba.as_raw(), rgba.width(), rgba.height())
        }
        _ => return Err(ImageProblem::Encode("unexpected pixel layout".to_owned())),
    };
    let encoded = encoder
        .encode_simple(false, quality.clamp(0.0, 100.0))
        .map_err(|e| ImageProblem::Encode(format!("{e:?}")))?;
    Ok(encoded.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use image::{ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

    fn encoded(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn gradient(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }))
    }

    fn decoded_size(webp: &[u8]) -> (u32, u32) {
        let image = image::load_from_memory_with_format(webp, ImageFormat::WebP).unwrap();
        (image.width(), image.height())
    }

    #[test]
    fn a_landscape_image_is_bounded_by_its_longest_side() {
        let png = encoded(gradient(2400, 1200), ImageFormat::Png);
        let processed = process(&png, MediaType::Png, DecodeLimits::default(), 80.0).unwrap();
        assert_eq!((processed.width, processed.height), (2400, 1200));
        let sizes: Vec<(u32, u32)> = processed
            .variants
            .iter()
            .map(|v| decoded_size(&v.webp))
            .collect();
        assert_eq!(sizes, vec![(1920, 960), (800, 400), (300, 150)]);
        for v in &processed.variants {
            assert_eq!(decoded_size(&v.webp), (v.width, v.height));
        }
    }

    #[test]
    fn a_portrait_image_is_bounded_by_its_height() {
        let jpeg = encoded(gradient(900, 1200), ImageFormat::Jpeg);
        let processed = process(&jpeg, MediaType::Jpeg, DecodeLimits::default(), 80.0).unwrap();
        let sizes: Vec<(u32, u32)> = processed
            .variants
            .iter()
            .map(|v| (v.width, v.height))
            .collect();
        assert_eq!(sizes, vec![(900, 1200), (600, 800), (225, 300)]);
    }

    #[test]
    fn a_small_image_is_never_upscaled() {
        let png = encoded(gradient(200, 100), ImageFormat::Png);
        let processed = process(&png, MediaType::Png, DecodeLimits::default(), 80.0).unwrap();
        for v in &processed.variants {
            assert_eq!(decoded_size(&v.webp), (200, 100), "{:?}", v.name);
        }
    }

    #[test]
    fn transparency_survives_in_the_variants() {
        let rgba = DynamicImage::ImageRgba8(RgbaImage::from_pixel(40, 20, Rgba([255, 0, 0, 0])));
        let png = encoded(rgba, ImageFormat::Png);
        let processed = process(&png, MediaType::Png, DecodeLimits::default(), 80.0).unwrap();
        let thumb =
            image::load_from_memory_with_format(&processed.variants[2].webp, ImageFormat::WebP)
                .unwrap();
        assert!(thumb.color().has_alpha());
    }

    #[test]
    fn an_image_beyond_the_limits_is_too_large() {
        let png = encoded(gradient(300, 200), ImageFormat::Png);
        let limits = DecodeLimits {
            max_side: 250,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            process(&png, MediaType::Png, limits, 80.0),
            Err(ImageProblem::TooLarge(_))
        ));
        let limits = DecodeLimits {
            max_pixels: 50_000,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            process(&png, MediaType::Png, limits, 80.0),
            Err(ImageProblem::TooLarge(_))
        ));
    }

    #[test]
    fn a_truncated_image_is_unreadable() {
        let jpeg = encoded(gradient(300, 200), ImageFormat::Jpeg);
        let cut = &jpeg[..jpeg.len() / 2];
        assert!(matches!(
            process(cut, MediaType::Jpeg, DecodeLimits::default(), 80.0),
            Err(ImageProblem::Unreadable(_))
        ));
    }

    #[test]
    fn bytes_that_only_begin_like_an_image_are_unreadable() {
        let mut lying = vec![0xFF, 0xD8, 0xFF, 0xE0];
        lying.extend_from_slice(b"this is not really a jpeg at all");
        assert!(matches!(
            process(&lying, MediaType::Jpeg, DecodeLimits::default(), 80.0),
            Err(ImageProblem::Unreadable(_))
        ));
    }
}
