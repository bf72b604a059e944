#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <langinfo.h>
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
static inline attr_t sftdeck_A_ITALIC(void) { return A_ITALIC; }
static inline int sftdeck_KEY_F(int n) { return KEY_F(n); }
static inline WINDOW *sftdeck_stdscr(void) { return stdscr; }
// COLORS and COLOR_PAIRS are mutable C globals that Swift 6 rejects.
static inline int sftdeck_colors(void) { return COLORS; }
static inline int sftdeck_color_pairs(void) { return COLOR_PAIRS; }
// The codeset after setlocale(LC_ALL, ""): "UTF-8" decides braille and half-blocks vs ASCII.
static inline const char *sftdeck_codeset(void) { return nl_langinfo(CODESET); }
// Draws one cell: a nul-terminated wide string (one spacing character, maybe combining marks) with
// attributes and an extended colour pair (pair numbers above 32767 need the opts pointer).
static inline int sftdeck_put_cell(WINDOW *w, int y, int x, const wchar_t *wch, attr_t attrs, int pair) {
    cchar_t c;
    if (setcchar(&c, wch, attrs, 0, &pair) != OK) return ERR;
    return mvwadd_wch(w, y, x, &c);
}
// Key codes (macros in some builds).
static inline int sftdeck_KEY_BTAB(void) { return KEY_BTAB; }
static inline int sftdeck_KEY_MOUSE(void) { return KEY_MOUSE; }
static inline int sftdeck_KEY_RESIZE(void) { return KEY_RESIZE; }
// Mouse: the masks are macros.
static inline void sftdeck_enable_mouse(void) { mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL); mouseinterval(0); }
// Reads one mouse event: returns 0 when none; button 1 = left click, 4 = wheel up, 5 = wheel down.
static inline int sftdeck_get_mouse(int *x, int *y) {
    MEVENT e;
    if (getmouse(&e) != OK) return 0;
    *x = e.x; *y = e.y;
    if (e.bstate & (BUTTON4_PRESSED)) return 4;
    if (e.bstate & (BUTTON5_PRESSED)) return 5;
    if (e.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED)) return 1;
    return 0;
}
