//! Image sets: finding images in a folder, checking that each one decodes, and making thumbnails.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// An image found under the imported folder.
#[derive(Debug, Clone)]
pub struct FoundImage {
    pub path: PathBuf,
    /// The path relative to the imported folder, with `/` separators: the image's name in the set.
    pub relative: String,
}

/// Every image under `root` (or `root` itself if it is an image file), in a stable order.
pub fn scan(root: &Path) -> Result<Vec<FoundImage>> {
    if !root.exists() {
        return Err(Error::Missing {
            path: root.to_path_buf(),
        });
    }
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| Error::Unreadable {
            path: e.path().unwrap_or(root).to_path_buf(),
            reason: e.to_string(),
        })?;
        if !entry.file_type().is_file() || !is_image_path(entry.path()) {
            continue;
        }
        let relative = match entry.path().strip_prefix(root) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel,
            _ => Path::new(entry.file_name()),
        };
        let relative = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        found.push(FoundImage {
            path: entry.path().to_path_buf(),
            relative,
        });
    }
    if found.is_empty() {
        return Err(Error::NoImages {
            path: root.to_path_buf(),
            extensions: IMAGE_EXTENSIONS.join(", "),
        });
    }
    Ok(found)
}

/// Decodes an image upright: the EXIF orientation (JPEG, PNG, WebP, TIFF) is applied to the
/// pixels, as browsers, CVAT and Ultralytics show a photo, so every size, coordinate and pixel
/// Lathe uses is of the upright image. The image crate's default limits bound what a forged
/// header can make it allocate (512 MiB).
pub fn decode(path: &Path) -> Result<image::DynamicImage> {
    use image::ImageDecoder;
    let unreadable = |reason: String| Error::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format().is_none() {
        return Err(unreadable("not a recognised image format".to_owned()));
    }
    let cannot = |e: image::ImageError| unreadable(format!("cannot decode image: {e}"));
    let mut decoder = reader.into_decoder().map_err(cannot)?;
    // A broken EXIF block does not make the picture unreadable: it is shown as stored.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = image::DynamicImage::from_decoder(decoder).map_err(cannot)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Decodes the whole image, so that a truncated or corrupt file is caught at import, and returns
/// its upright size in pixels (width, height).
pub fn inspect(path: &Path) -> Result<(u32, u32)> {
    if std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len()
        == 0
    {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let image = decode(path)?;
    Ok((image.width(), image.height()))
}

/// An RGBA thumbnail that fits in a `max_side` square.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

pub fn thumbnail(path: &Path, max_side: u32) -> Result<Thumbnail> {
    let image = decode(path)?;
    let small = if image.width() > max_side || image.height() > max_side {
        image.thumbnail(max_side, max_side)
    } else {
        image
    };
    let rgba = small.to_rgba8();
    Ok(Thumbnail {
        width: rgba.width(),
        height: rgba.height(),
        rgba: rgba.into_raw(),
    })
}
