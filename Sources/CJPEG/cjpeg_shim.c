#include <stdio.h>
#include <jpeglib.h>
#include "cjpeg_shim.h"
int sftdeck_jpeg_lib_version(void) { return JPEG_LIB_VERSION; }
