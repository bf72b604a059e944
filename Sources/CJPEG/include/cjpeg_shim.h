#ifndef SFTDECK_CJPEG_SHIM_H
#define SFTDECK_CJPEG_SHIM_H
#include <stddef.h>
#include <stdint.h>

/// libjpeg version this shim was built against (JPEG_LIB_VERSION).
int sftdeck_jpeg_lib_version(void);
/// libpng version string the shim runs against.
const char *sftdeck_png_lib_version(void);

/// Limits checked against the file header before any pixel buffer is allocated.
typedef struct {
    long max_width;
    long max_height;
    long max_pixels;
} sftdeck_image_limits;

/// A decoded 8-bit image, row-major, interleaved `channels` bytes per pixel. `pixels` is malloc'ed by the
/// shim and released with `sftdeck_image_free`.
///   JPEG: channels 1 (gray) or 3 (RGB; CMYK/YCCK already converted to RGB the way Pillow does).
///   PNG:  channels 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); palette expanded, tRNS turned into alpha,
///         16-bit samples reduced the way Pillow does (high byte; 16-bit gray clipped to 255).
typedef struct {
    uint8_t *pixels;
    int width;
    int height;
    int channels;
    /// JPEG: number of components in the file (1, 3, 4); PNG: the IHDR colour type.
    int source_kind;
    /// PNG: bit depth; JPEG: 1 when the frame is progressive.
    int source_detail;
} sftdeck_image;

/// Return codes. On failure `error` holds one line (NUL-terminated, truncated to `error_size`).
enum {
    SFTDECK_IMAGE_OK = 0,
    SFTDECK_IMAGE_CORRUPT = 1,      /* the codec library rejected the data */
    SFTDECK_IMAGE_TOO_LARGE = 2,    /* header dimensions exceed the limits */
    SFTDECK_IMAGE_UNSUPPORTED = 3,  /* a valid file this shim does not handle */
    SFTDECK_IMAGE_NO_MEMORY = 4
};

/// Decode JPEG bytes (baseline, progressive, grayscale, RGB, CMYK, YCCK) with libjpeg: ISLOW IDCT, fancy
/// upsampling (libjpeg defaults, as Pillow uses them). Never calls exit(), never writes to stderr.
int sftdeck_jpeg_decode(const uint8_t *data, size_t size, sftdeck_image_limits limits, sftdeck_image *out,
                        char *error, size_t error_size);

/// Decode PNG bytes with libpng's progressive-free low-level API under setjmp (no gamma or colour management,
/// matching Pillow, which ignores gAMA/iCCP). Never aborts, never writes to stderr.
int sftdeck_png_decode(const uint8_t *data, size_t size, sftdeck_image_limits limits, sftdeck_image *out,
                       char *error, size_t error_size);

void sftdeck_image_free(sftdeck_image *image);

#endif
