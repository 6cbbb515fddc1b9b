//! Single images in the MNIST form, from PNG files: 28 x 28 pixels, 8-bit greyscale.
//!
//! A PNG is accepted only when it already holds exactly what an MNIST image holds: 28 x
//! 28 pixels, colour type greyscale (0), bit depth 8. Its bytes are then the image's
//! pixels, row by row, unchanged (no gamma or colour correction; a `tRNS` chunk is
//! ignored). Everything else is refused with a typed error naming the file and what it
//! holds, never converted: turning RGB into grey (which weights?), removing an alpha
//! channel (over which background?), rescaling 16-bit or 1-bit samples or resizing are
//! guesses, and a guess that differs from how the training images were made gives a
//! confident wrong answer rather than an error. Convert such images first, for example
//! with ImageMagick:
//!
//! ```text
//! magick in.png -background black -alpha remove -colorspace Gray -resize 28x28! \
//!     -define png:color-type=0 -define png:bit-depth=8 out.png
//! ```
//!
//! MNIST's digits (and Fashion-MNIST's items) are light on a black background: 0 is
//! background, 255 full ink. A dark digit on a white page must be inverted
//! (`-negate`) to look like the training images.
//!
//! The header is read before any pixel: an image of another size is refused without
//! decoding its data, so a huge PNG costs no memory.
//!
//! ```
//! use glorot_mnist::{PIXELS, image};
//! use std::path::Path;
//!
//! // A 28 x 28 8-bit greyscale PNG, written with the png crate.
//! let pixels: Vec<u8> = (0..PIXELS).map(|p| (p % 256) as u8).collect();
//! let mut bytes = Vec::new();
//! let mut encoder = png::Encoder::new(&mut bytes, 28, 28);
//! encoder.set_color(png::ColorType::Grayscale);
//! encoder.set_depth(png::BitDepth::Eight);
//! encoder.write_header()?.write_image_data(&pixels)?;
//! assert_eq!(image::decode_png(&bytes, Path::new("digit.png"))?[..], pixels[..]);
//!
//! // Any other size is an error naming the file and the size found.
//! let mut wide = Vec::new();
//! let mut encoder = png::Encoder::new(&mut wide, 32, 28);
//! encoder.set_color(png::ColorType::Grayscale);
//! encoder.write_header()?.write_image_data(&[0; 32 * 28])?;
//! let err = image::decode_png(&wide, Path::new("wide.png")).unwrap_err();
//! assert!(err.to_string().contains("wide.png") && err.to_string().contains("32x28"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::Read;
use std::path::Path;

use crate::{COLS, Error, PIXELS, ROWS};

/// The eight bytes every PNG file starts with.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Whether `bytes` start with the PNG signature.
pub fn is_png(bytes: &[u8]) -> bool {
    bytes.starts_with(&PNG_SIGNATURE)
}

/// Reads the PNG file at `path` as one MNIST image: its 784 pixel bytes, row-major.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, and those of [`decode_png`].
pub fn read_png(path: &Path) -> Result<[u8; PIXELS], Error> {
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    decode(std::io::BufReader::new(file), path)
}

/// Decodes a PNG file's content as one MNIST image: its 784 pixel bytes, row-major.
/// `file` is used only to name the file in errors.
///
/// # Errors
/// [`Error::Png`] when the bytes are not a valid PNG (a wrong signature, a truncated
/// file, a bad checksum), [`Error::PngSize`] when it is not 28 x 28 pixels,
/// [`Error::PngFormat`] when it is not 8-bit greyscale.
pub fn decode_png(bytes: &[u8], file: &Path) -> Result<[u8; PIXELS], Error> {
    decode(bytes, file)
}

fn decode(r: impl Read, file: &Path) -> Result<[u8; PIXELS], Error> {
    let png_error = |e: png::DecodingError| Error::Png {
        file: file.to_owned(),
        source: e.into(),
    };
    let mut decoder = png::Decoder::new(r);
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(png_error)?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    if width as usize != COLS || height as usize != ROWS {
        return Err(Error::PngSize {
            file: file.to_owned(),
            width,
            height,
        });
    }
    let (color, depth) = (info.color_type, info.bit_depth);
    if color != png::ColorType::Grayscale || depth != png::BitDepth::Eight {
        return Err(Error::PngFormat {
            file: file.to_owned(),
            color: color_name(color),
            bit_depth: depth as u8,
        });
    }
    // 28 x 28, one byte per pixel, no transformation: the frame is exactly the image.
    let mut pixels = [0u8; PIXELS];
    let frame = reader.next_frame(&mut pixels).map_err(png_error)?;
    debug_assert_eq!(frame.buffer_size(), PIXELS);
    // Through the end chunk: a file cut after its image data is still a truncated file.
    reader.finish().map_err(png_error)?;
    Ok(pixels)
}

fn color_name(color: png::ColorType) -> &'static str {
    match color {
        png::ColorType::Grayscale => "greyscale",
        png::ColorType::Rgb => "RGB",
        png::ColorType::Indexed => "palette (indexed colour)",
        png::ColorType::GrayscaleAlpha => "greyscale with alpha",
        png::ColorType::Rgba => "RGBA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(width: u32, height: u32, color: png::ColorType, depth: png::BitDepth) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        let bits = color.samples() * depth as usize;
        let row = (width as usize * bits).div_ceil(8);
        let data = vec![0x5a; row * height as usize];
        encoder
            .write_header()
            .unwrap()
            .write_image_data(&data)
            .unwrap();
        bytes
    }

    fn f() -> &'static Path {
        Path::new("fixture.png")
    }

    #[test]
    fn an_8_bit_greyscale_28_by_28_image_is_its_bytes() {
        let bytes = encode(28, 28, png::ColorType::Grayscale, png::BitDepth::Eight);
        assert!(is_png(&bytes));
        assert_eq!(decode_png(&bytes, f()).unwrap(), [0x5a; PIXELS]);
    }

    #[test]
    fn other_sizes_are_refused_naming_the_size() {
        for (w, h) in [(27, 28), (28, 29), (1, 1), (280, 280)] {
            let bytes = encode(w, h, png::ColorType::Grayscale, png::BitDepth::Eight);
            match decode_png(&bytes, f()) {
                Err(e @ Error::PngSize { width, height, .. }) => {
                    assert_eq!((width, height), (w, h));
                    let msg = e.to_string();
                    assert!(msg.contains("fixture.png"), "{msg}");
                    assert!(msg.contains(&format!("found {w}x{h}")), "{msg}");
                }
                other => panic!("{w}x{h}: expected PngSize, got {other:?}"),
            }
        }
    }

    #[test]
    fn colour_alpha_and_other_depths_are_refused_not_converted() {
        use png::{BitDepth as D, ColorType as C};
        for (color, depth, name) in [
            (C::Rgb, D::Eight, "RGB, 8-bit"),
            (C::Rgba, D::Eight, "RGBA, 8-bit"),
            (C::GrayscaleAlpha, D::Eight, "greyscale with alpha, 8-bit"),
            (C::Grayscale, D::Sixteen, "greyscale, 16-bit"),
            (C::Grayscale, D::One, "greyscale, 1-bit"),
        ] {
            let bytes = encode(28, 28, color, depth);
            match decode_png(&bytes, f()) {
                Err(e @ Error::PngFormat { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(name), "{msg}");
                    assert!(msg.contains("fixture.png"), "{msg}");
                }
                other => panic!("{name}: expected PngFormat, got {other:?}"),
            }
        }
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors() {
        let good = encode(28, 28, png::ColorType::Grayscale, png::BitDepth::Eight);
        // Every proper prefix: an error, never a panic.
        for cut in 0..good.len() {
            assert!(
                matches!(decode_png(&good[..cut], f()), Err(Error::Png { .. })),
                "prefix of {cut} bytes"
            );
        }
        // A flipped byte in the image data: its CRC no longer matches.
        let mut bad = good.clone();
        let at = bad.len() - 20;
        bad[at] ^= 0xff;
        assert!(matches!(decode_png(&bad, f()), Err(Error::Png { .. })));
        // Not a PNG at all.
        assert!(matches!(
            decode_png(b"GIF89a......", f()),
            Err(Error::Png { .. })
        ));
    }
}
