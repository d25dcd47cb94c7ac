//! Photo formats by their magic numbers, and location-metadata stripping that never
//! re-encodes the image: EXIF/XMP segments (JPEG), `eXIf` and text chunks (PNG) and
//! `EXIF`/`XMP ` chunks (WebP) are dropped while every other byte is copied as it
//! came. Both work on readers and writers in bounded buffers, so a photo is never held
//! in memory whole. HEIC is recognised but stored as sent (its metadata lives in
//! ISO-BMFF items that cannot be removed without rewriting the container's offsets).

use std::io::{self, Read, Seek, SeekFrom, Write};

/// An accepted photo format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Webp,
    Heic,
}

impl ImageKind {
    /// The media type sent and stored for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::Webp => "image/webp",
            ImageKind::Heic => "image/heic",
        }
    }

    /// The format a `Content-Type` names, if it is one we accept.
    pub fn from_content_type(ct: &str) -> Option<ImageKind> {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "image/jpeg" | "image/jpg" => Some(ImageKind::Jpeg),
            "image/png" => Some(ImageKind::Png),
            "image/webp" => Some(ImageKind::Webp),
            "image/heic" | "image/heif" => Some(ImageKind::Heic),
            _ => None,
        }
    }

    /// The format of a file by its first bytes (at least [`SNIFF_LEN`] of them).
    pub fn sniff(head: &[u8]) -> Option<ImageKind> {
        if head.len() < SNIFF_LEN {
            return None;
        }
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Some(ImageKind::Jpeg);
        }
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(ImageKind::Png);
        }
        if &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            return Some(ImageKind::Webp);
        }
        if &head[4..8] == b"ftyp"
            && matches!(
                &head[8..12],
                b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1"
            )
        {
            return Some(ImageKind::Heic);
        }
        None
    }
}

/// How many leading bytes [`ImageKind::sniff`] needs.
pub const SNIFF_LEN: usize = 12;

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Copies `len` bytes from `input` to `output` (or skips them when `output` is `None`).
fn pass<R: Read, W: Write>(input: &mut R, output: Option<&mut W>, len: u64) -> io::Result<()> {
    let mut limited = input.take(len);
    let copied = match output {
        Some(out) => io::copy(&mut limited, out)?,
        None => io::copy(&mut limited, &mut io::sink())?,
    };
    if copied != len {
        return Err(bad("truncated image"));
    }
    Ok(())
}

/// Copies a photo from `input` to `output` without its location metadata.
pub fn strip_metadata<R: Read, W: Write + Seek>(
    kind: ImageKind,
    input: &mut R,
    output: &mut W,
) -> io::Result<()> {
    match kind {
        ImageKind::Jpeg => strip_jpeg(input, output),
        ImageKind::Png => strip_png(input, output),
        ImageKind::Webp => strip_webp(input, output),
        ImageKind::Heic => io::copy(input, output).map(|_| ()),
    }
}

/// JPEG: drop APP1 (EXIF, XMP) and APP13 (Photoshop/IPTC) segments before the scan.
fn strip_jpeg<R: Read, W: Write>(input: &mut R, output: &mut W) -> io::Result<()> {
    let mut soi = [0u8; 2];
    input.read_exact(&mut soi)?;
    if soi != [0xFF, 0xD8] {
        return Err(bad("not a JPEG"));
    }
    output.write_all(&soi)?;
    loop {
        let mut byte = [0u8; 1];
        input.read_exact(&mut byte)?;
        if byte[0] != 0xFF {
            return Err(bad("JPEG marker expected"));
        }
        // Fill bytes: any number of 0xFF before the marker code.
        let mut code = [0xFFu8; 1];
        while code[0] == 0xFF {
            input.read_exact(&mut code)?;
        }
        let marker = code[0];
        match marker {
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                output.write_all(&[0xFF, marker])?;
                continue;
            }
            0xD9 => {
                output.write_all(&[0xFF, marker])?;
                return io::copy(input, output).map(|_| ());
            }
            _ => {}
        }
        let mut len_bytes = [0u8; 2];
        input.read_exact(&mut len_bytes)?;
        let len = u16::from_be_bytes(len_bytes);
        if len < 2 {
            return Err(bad("bad JPEG segment length"));
        }
        let body = u64::from(len - 2);
        if marker == 0xE1 || marker == 0xED {
            pass::<R, W>(input, None, body)?;
            continue;
        }
        output.write_all(&[0xFF, marker])?;
        output.write_all(&len_bytes)?;
        pass(input, Some(&mut *output), body)?;
        if marker == 0xDA {
            // Start of scan: the entropy-coded image and everything after it, as is.
            return io::copy(input, output).map(|_| ());
        }
    }
}

/// PNG: drop `eXIf` and the text chunks (`tEXt`, `zTXt`, `iTXt`) that carry XMP and
/// raw EXIF profiles.
fn strip_png<R: Read, W: Write>(input: &mut R, output: &mut W) -> io::Result<()> {
    let mut sig = [0u8; 8];
    input.read_exact(&mut sig)?;
    if &sig != b"\x89PNG\r\n\x1a\n" {
        return Err(bad("not a PNG"));
    }
    output.write_all(&sig)?;
    loop {
        let mut header = [0u8; 8];
        match input.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(bad("PNG ends without IEND"))
            }
            Err(e) => return Err(e),
        }
        let len = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let kind = [header[4], header[5], header[6], header[7]];
        let drop = matches!(&kind, b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt");
        if drop {
            pass::<R, W>(input, None, len + 4)?;
            continue;
        }
        output.write_all(&header)?;
        pass(input, Some(&mut *output), len + 4)?;
        if &kind == b"IEND" {
            return Ok(());
        }
    }
}

/// WebP: drop `EXIF` and `XMP ` chunks, clear their flags in `VP8X`, fix the RIFF size.
fn strip_webp<R: Read, W: Write + Seek>(input: &mut R, output: &mut W) -> io::Result<()> {
    let mut header = [0u8; 12];
    input.read_exact(&mut header)?;
    if &header[0..4] != b"RIFF" || &header[8..12] != b"WEBP" {
        return Err(bad("not a WebP"));
    }
    let riff_len = u64::from(u32::from_le_bytes([
        header[4], header[5], header[6], header[7],
    ]));
    let start = output.stream_position()?;
    output.write_all(&header)?;
    let mut remaining = riff_len
        .checked_sub(4)
        .ok_or_else(|| bad("bad RIFF size"))?;
    let mut written: u64 = 4;
    while remaining > 0 {
        let mut chunk = [0u8; 8];
        input.read_exact(&mut chunk)?;
        let size = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        let padded = size + (size & 1);
        remaining = remaining
            .checked_sub(8 + padded)
            .ok_or_else(|| bad("WebP chunk overruns the file"))?;
        match &chunk[0..4] {
            b"EXIF" | b"XMP " => pass::<R, W>(input, None, padded)?,
            b"VP8X" if size >= 1 => {
                let mut flags = [0u8; 1];
                input.read_exact(&mut flags)?;
                flags[0] &= !(0x08 | 0x04);
                output.write_all(&chunk)?;
                output.write_all(&flags)?;
                pass(input, Some(&mut *output), padded - 1)?;
                written += 8 + padded;
            }
            _ => {
                output.write_all(&chunk)?;
                pass(input, Some(&mut *output), padded)?;
                written += 8 + padded;
            }
        }
    }
    let size = u32::try_from(written).map_err(|_| bad("WebP too large"))?;
    let end = output.stream_position()?;
    output.seek(SeekFrom::Start(start + 4))?;
    output.write_all(&size.to_le_bytes())?;
    output.seek(SeekFrom::Start(end))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn strip(kind: ImageKind, bytes: &[u8]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        strip_metadata(kind, &mut Cursor::new(bytes), &mut out).expect("strip");
        out.into_inner()
    }

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0, 0, 0, 0]); // CRC is copied, not checked
        c
    }

    #[test]
    fn sniffs_the_accepted_formats_only() {
        assert_eq!(
            ImageKind::sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01"),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0d"),
            Some(ImageKind::Png)
        );
        assert_eq!(
            ImageKind::sniff(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(ImageKind::Webp)
        );
        assert_eq!(
            ImageKind::sniff(b"\0\0\0\x18ftypheic\0\0"),
            Some(ImageKind::Heic)
        );
        assert_eq!(ImageKind::sniff(b"GIF89a......"), None);
        assert_eq!(ImageKind::sniff(b"%PDF-1.7 ..."), None);
        assert_eq!(ImageKind::sniff(b"\xFF\xD8"), None);
    }

    #[test]
    fn jpeg_loses_app1_and_keeps_the_rest() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB]); // APP0
        jpeg.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x08]); // APP1 Exif
        jpeg.extend_from_slice(b"Exif\0\0");
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x03, 0x01]); // SOS
        jpeg.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD9]);
        let out = strip(ImageKind::Jpeg, &jpeg);
        let mut want = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB];
        want.extend_from_slice(&[
            0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD9,
        ]);
        assert_eq!(out, want);
    }

    #[test]
    fn truncated_jpeg_is_an_error() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x40, b'E'];
        let mut out = Cursor::new(Vec::new());
        assert!(strip_metadata(ImageKind::Jpeg, &mut Cursor::new(&jpeg[..]), &mut out).is_err());
    }

    #[test]
    fn png_loses_exif_and_text_chunks() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let ihdr = png_chunk(b"IHDR", &[0; 13]);
        let idat = png_chunk(b"IDAT", &[1, 2, 3]);
        let iend = png_chunk(b"IEND", &[]);
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&png_chunk(b"eXIf", b"MM\0*GPS"));
        png.extend_from_slice(&png_chunk(b"iTXt", b"XML:com.adobe.xmp\0..."));
        png.extend_from_slice(&idat);
        png.extend_from_slice(&iend);
        let out = strip(ImageKind::Png, &png);
        let mut want = b"\x89PNG\r\n\x1a\n".to_vec();
        want.extend_from_slice(&ihdr);
        want.extend_from_slice(&idat);
        want.extend_from_slice(&iend);
        assert_eq!(out, want);
    }

    #[test]
    fn webp_loses_exif_and_xmp_and_stays_consistent() {
        let chunk = |kind: &[u8; 4], data: &[u8]| {
            let mut c = kind.to_vec();
            c.extend_from_slice(&(data.len() as u32).to_le_bytes());
            c.extend_from_slice(data);
            if data.len() % 2 == 1 {
                c.push(0);
            }
            c
        };
        let vp8x = chunk(b"VP8X", &[0x0C, 0, 0, 0, 9, 0, 0, 9, 0, 0]);
        let image = chunk(b"VP8L", &[0x2F, 1, 2, 3, 4]);
        let body = [
            vp8x.clone(),
            chunk(b"EXIF", b"MM\0*GPS!"),
            image.clone(),
            chunk(b"XMP ", b"<x:xmpmeta/>"),
        ]
        .concat();
        let mut webp = b"RIFF".to_vec();
        webp.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
        webp.extend_from_slice(b"WEBP");
        webp.extend_from_slice(&body);
        let out = strip(ImageKind::Webp, &webp);
        let mut vp8x_clean = vp8x;
        vp8x_clean[8] = 0x00; // EXIF and XMP flags cleared
        let kept = [vp8x_clean, image].concat();
        let mut want = b"RIFF".to_vec();
        want.extend_from_slice(&((kept.len() + 4) as u32).to_le_bytes());
        want.extend_from_slice(b"WEBP");
        want.extend_from_slice(&kept);
        assert_eq!(out, want);
    }
}
