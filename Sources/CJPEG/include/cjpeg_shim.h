#ifndef SFTDECK_CJPEG_SHIM_H
#define SFTDECK_CJPEG_SHIM_H
#include <stddef.h>
/// libjpeg version this shim was built against (JPEG_LIB_VERSION).
int sftdeck_jpeg_lib_version(void);
#endif
