// JPEG decoding under setjmp: libjpeg's default error manager prints to stderr and calls exit(); here
// error_exit longjmps back with the formatted message and output_message is silenced (warnings are
// ignored, as Pillow ignores them).
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include "cjpeg_shim.h"

int sftdeck_jpeg_lib_version(void) { return JPEG_LIB_VERSION; }

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
    int truncated;  // libjpeg only warns (JWRN_JPEG_EOF) and pads with gray; Pillow raises "image file is truncated"
} shim_jpeg_error;

static void shim_jpeg_error_exit(j_common_ptr cinfo) {
    shim_jpeg_error *err = (shim_jpeg_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->escape, 1);
}

static void shim_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void shim_jpeg_emit_message(j_common_ptr cinfo, int msg_level) {
    shim_jpeg_error *err = (shim_jpeg_error *)cinfo->err;
    if (msg_level < 0) {
        cinfo->err->num_warnings++;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) err->truncated = 1;
    }
}

static void set_error(char *error, size_t error_size, const char *text) {
    if (error && error_size > 0) {
        strncpy(error, text, error_size - 1);
        error[error_size - 1] = 0;
    }
}

void sftdeck_image_free(sftdeck_image *image) {
    if (image && image->pixels) {
        free(image->pixels);
        image->pixels = NULL;
    }
}

// Pillow's Convert.c cmyk2rgb: nk = 255 - k; channel = clip8(nk - muldiv255(c, nk)).
static inline int muldiv255(int a, int b) {
    int tmp = a * b + 128;
    return ((tmp >> 8) + tmp) >> 8;
}

int sftdeck_jpeg_decode(const uint8_t *data, size_t size, sftdeck_image_limits limits, sftdeck_image *out,
                        char *error, size_t error_size) {
    struct jpeg_decompress_struct cinfo;
    shim_jpeg_error jerr;
    // volatile: modified between setjmp and longjmp.
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile row = NULL;
    memset(out, 0, sizeof(*out));
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&jerr.base);
    jerr.base.error_exit = shim_jpeg_error_exit;
    jerr.base.output_message = shim_jpeg_output_message;
    jerr.base.emit_message = shim_jpeg_emit_message;
    jerr.message[0] = 0;
    jerr.truncated = 0;
    if (setjmp(jerr.escape)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(row);
        set_error(error, error_size, jerr.message[0] ? jerr.message : "libjpeg error");
        return SFTDECK_IMAGE_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    if (size > (size_t)0xFFFFFFFFul) {
        jpeg_destroy_decompress(&cinfo);
        set_error(error, error_size, "JPEG data larger than 4 GiB");
        return SFTDECK_IMAGE_UNSUPPORTED;
    }
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    long w = (long)cinfo.image_width, h = (long)cinfo.image_height;
    if (w > limits.max_width || h > limits.max_height || w * h > limits.max_pixels) {
        char msg[200];
        snprintf(msg, sizeof msg, "JPEG is %ldx%ld, over the limit %ldx%ld / %ld pixels", w, h, limits.max_width,
                 limits.max_height, limits.max_pixels);
        jpeg_destroy_decompress(&cinfo);
        set_error(error, error_size, msg);
        return SFTDECK_IMAGE_TOO_LARGE;
    }
    int components = cinfo.num_components;
    int channels;
    switch (components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; channels = 1; break;
    case 3: cinfo.out_color_space = JCS_RGB; channels = 3; break;
    case 4: cinfo.out_color_space = JCS_CMYK; channels = 3; break;  // libjpeg converts YCCK to CMYK
    default: {
        char msg[100];
        snprintf(msg, sizeof msg, "JPEG with %d components is not supported", components);
        jpeg_destroy_decompress(&cinfo);
        set_error(error, error_size, msg);
        return SFTDECK_IMAGE_UNSUPPORTED;
    }
    }
    // Pillow's settings: libjpeg defaults (JDCT_ISLOW, fancy upsampling, no scaling).
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    out->source_detail = cinfo.progressive_mode ? 1 : 0;
    jpeg_start_decompress(&cinfo);

    size_t stride = (size_t)w * (size_t)channels;
    pixels = (uint8_t *)malloc(stride * (size_t)h);
    if (components == 4) row = (uint8_t *)malloc((size_t)w * 4);
    if (!pixels || (components == 4 && !row)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(row);
        set_error(error, error_size, "out of memory for JPEG pixels");
        return SFTDECK_IMAGE_NO_MEMORY;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        if (components == 4) {
            JSAMPROW rows[1] = {row};
            jpeg_read_scanlines(&cinfo, rows, 1);
            uint8_t *dst = pixels + y * stride;
            for (long x = 0; x < w; x++) {
                // Pillow reads 4-component JPEGs as "CMYK;I" (Adobe polarity: stored inverted), always.
                int c = 255 - row[4 * x], m = 255 - row[4 * x + 1], yy = 255 - row[4 * x + 2];
                int nk = row[4 * x + 3];  // 255 - k with k = 255 - raw
                int r = nk - muldiv255(c, nk), g = nk - muldiv255(m, nk), b = nk - muldiv255(yy, nk);
                dst[3 * x] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
                dst[3 * x + 1] = (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
                dst[3 * x + 2] = (uint8_t)(b < 0 ? 0 : b > 255 ? 255 : b);
            }
        } else {
            JSAMPROW rows[1] = {pixels + y * stride};
            jpeg_read_scanlines(&cinfo, rows, 1);
        }
    }
    if (!jerr.truncated) jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    if (jerr.truncated) {
        free(pixels);
        set_error(error, error_size, "JPEG data is truncated (premature end of file)");
        return SFTDECK_IMAGE_CORRUPT;
    }
    out->pixels = pixels;
    out->width = (int)w;
    out->height = (int)h;
    out->channels = channels;
    out->source_kind = components;
    return SFTDECK_IMAGE_OK;
}
