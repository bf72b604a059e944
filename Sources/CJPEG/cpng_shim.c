// PNG decoding with libpng's low-level API under setjmp. The simplified png_image_* API is not used on
// purpose: it applies gamma (gAMA), treats 16-bit data as linear and rounds 16 -> 8 bits, while Pillow ignores
// gamma and keeps the high byte; this shim reproduces Pillow's decoded bytes instead.
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>
#include "cjpeg_shim.h"

const char *sftdeck_png_lib_version(void) { return png_get_libpng_ver(NULL); }

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
    char message[200];
} shim_png_state;

static void shim_png_error(png_structp png, png_const_charp msg) {
    shim_png_state *st = (shim_png_state *)png_get_error_ptr(png);
    snprintf(st->message, sizeof st->message, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

static void shim_png_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void shim_png_read(png_structp png, png_bytep dst, png_size_t n) {
    shim_png_state *st = (shim_png_state *)png_get_io_ptr(png);
    if (n > st->size - st->offset) {
        snprintf(st->message, sizeof st->message, "PNG data is truncated");
        png_longjmp(png, 1);
    }
    memcpy(dst, st->data + st->offset, n);
    st->offset += n;
}

static void set_error(char *error, size_t error_size, const char *text) {
    if (error && error_size > 0) {
        strncpy(error, text, error_size - 1);
        error[error_size - 1] = 0;
    }
}

int sftdeck_png_decode(const uint8_t *data, size_t size, sftdeck_image_limits limits, sftdeck_image *out,
                       char *error, size_t error_size) {
    memset(out, 0, sizeof(*out));
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        set_error(error, error_size, "not a PNG file (bad signature)");
        return SFTDECK_IMAGE_CORRUPT;
    }
    shim_png_state st = {data, size, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, shim_png_error, shim_png_warning);
    if (!png) {
        set_error(error, error_size, "out of memory for libpng");
        return SFTDECK_IMAGE_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_error(error, error_size, "out of memory for libpng");
        return SFTDECK_IMAGE_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        set_error(error, error_size, st.message[0] ? st.message : "libpng error");
        return SFTDECK_IMAGE_CORRUPT;
    }
    png_set_read_fn(png, &st, shim_png_read);
    // libpng's own limit (1,000,000 by default) would reject wide-but-legal images before ours.
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    // Pillow does not verify ancillary chunk CRCs fatally; keep libpng's default for critical chunks.
    png_read_info(png, info);

    png_uint_32 w32, h32;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &w32, &h32, &bit_depth, &color_type, &interlace, NULL, NULL);
    long w = (long)w32, h = (long)h32;
    if (w > limits.max_width || h > limits.max_height || w * h > limits.max_pixels) {
        char msg[200];
        snprintf(msg, sizeof msg, "PNG is %ldx%ld, over the limit %ldx%ld / %ld pixels", w, h, limits.max_width,
                 limits.max_height, limits.max_pixels);
        png_destroy_read_struct(&png, &info, NULL);
        set_error(error, error_size, msg);
        return SFTDECK_IMAGE_TOO_LARGE;
    }
    out->source_kind = color_type;
    out->source_detail = bit_depth;
    int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    int gray16 = (color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16);

    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    // tRNS becomes an alpha channel so that the caller can drop it or composite it (16-bit gray keeps none:
    // Pillow opens it as I;16 and converts by clipping, where the transparency key plays no part).
    if (has_trns && !gray16) png_set_tRNS_to_alpha(png);
    // Pillow's "RGB;16B"/"RGBA;16B"/"LA;16B" raw modes keep the high byte of each sample.
    if (bit_depth == 16 && !gray16) png_set_strip_16(png);
    if (gray16) png_set_swap(png);  // host order (little endian) for the clip below
    int passes = png_set_interlace_handling(png);
    (void)passes;
    png_read_update_info(png, info);

    int channels = (int)png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    size_t out_stride = (size_t)w * (size_t)(gray16 ? 1 : channels);
    size_t buffer_bytes = gray16 ? rowbytes * (size_t)h : out_stride * (size_t)h;
    if (!gray16 && rowbytes != out_stride) {
        png_destroy_read_struct(&png, &info, NULL);
        set_error(error, error_size, "unexpected PNG row layout");
        return SFTDECK_IMAGE_UNSUPPORTED;
    }
    pixels = (uint8_t *)malloc(buffer_bytes ? buffer_bytes : 1);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)(h ? h : 1));
    if (!pixels || !rows) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        set_error(error, error_size, "out of memory for PNG pixels");
        return SFTDECK_IMAGE_NO_MEMORY;
    }
    for (long y = 0; y < h; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    // The image data is complete; a damaged trailer after IDAT is not worth rejecting (Pillow reads lazily
    // and never looks at it either).
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);

    if (gray16) {
        // Pillow: I;16 -> L/RGB clips each value to 0...255 (no scaling).
        for (long i = 0; i < w * h; i++) {
            uint16_t v;
            memcpy(&v, pixels + 2 * i, 2);
            pixels[i] = (uint8_t)(v > 255 ? 255 : v);
        }
        channels = 1;
    }
    out->pixels = pixels;
    out->width = (int)w;
    out->height = (int)h;
    out->channels = channels;
    return SFTDECK_IMAGE_OK;
}
