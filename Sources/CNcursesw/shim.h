#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <wchar.h>
#include <ncursesw/ncurses.h>
// Macros Swift cannot import, wrapped as functions.
static inline int sftdeck_getmaxy(WINDOW *w) { return getmaxy(w); }
static inline int sftdeck_getmaxx(WINDOW *w) { return getmaxx(w); }
static inline attr_t sftdeck_A_BOLD(void) { return A_BOLD; }
static inline attr_t sftdeck_A_REVERSE(void) { return A_REVERSE; }
static inline attr_t sftdeck_A_DIM(void) { return A_DIM; }
static inline attr_t sftdeck_A_UNDERLINE(void) { return A_UNDERLINE; }
static inline attr_t sftdeck_A_NORMAL(void) { return A_NORMAL; }
static inline int sftdeck_KEY_F(int n) { return KEY_F(n); }
static inline WINDOW *sftdeck_stdscr(void) { return stdscr; }
