// Generated from themes/*.toml (a test checks they stay equal): the binary carries its themes.
enum BuiltInThemes {
    static let text: [String: String] = [
        "dark": #"""
# SFTDeck dark theme. Colours are "#rrggbb" or "default" (the terminal's own colour).
# Every slot is required; terminals with fewer colours get the nearest 256/8-colour match.
name = "dark"

[ui]
background = "#1b1d23"
foreground = "#d8dee9"
muted = "#7a8290"
accent = "#61afef"
border = "#4b5263"
border_focused = "#61afef"
title = "#e5c07b"
selection_fg = "#1b1d23"
selection_bg = "#61afef"
status_fg = "#d8dee9"
status_bg = "#2c313c"
success = "#98c379"
warning = "#e5c07b"
error = "#e06c75"

[chart]
axis = "#7a8290"
loss = "#5c6370"
loss_smoothed = "#e06c75"
learning_rate = "#98c379"
grad_norm = "#c678dd"
runs = ["#e06c75", "#61afef", "#98c379", "#e5c07b", "#c678dd", "#56b6c2"]

[roles]
user = "#61afef"
assistant = "#98c379"
system = "#c678dd"

[tokens]
trained = "#98c379"
prompt = "#7a8290"
system = "#c678dd"
pad = "#4b5263"
image = "#56b6c2"
image_boundary = "#e5c07b"
truncated = "#e06c75"
"""#,
        "light": #"""
# SFTDeck light theme: dark text on a light background.
name = "light"

[ui]
background = "#fafafa"
foreground = "#383a42"
muted = "#8a8c94"
accent = "#2962c4"
border = "#b8bcc6"
border_focused = "#2962c4"
title = "#a05a00"
selection_fg = "#fafafa"
selection_bg = "#2962c4"
status_fg = "#383a42"
status_bg = "#e5e6eb"
success = "#2e7d32"
warning = "#a05a00"
error = "#c62828"

[chart]
axis = "#8a8c94"
loss = "#b0b3ba"
loss_smoothed = "#c62828"
learning_rate = "#2e7d32"
grad_norm = "#8e24aa"
runs = ["#c62828", "#2962c4", "#2e7d32", "#a05a00", "#8e24aa", "#00838f"]

[roles]
user = "#2962c4"
assistant = "#2e7d32"
system = "#8e24aa"

[tokens]
trained = "#2e7d32"
prompt = "#8a8c94"
system = "#8e24aa"
pad = "#c5c7cd"
image = "#00838f"
image_boundary = "#a05a00"
truncated = "#c62828"
"""#,
        "high-contrast": #"""
# SFTDeck high-contrast theme, safe for colour-blind readers: the Okabe-Ito palette (orange,
# sky blue, bluish green, yellow, blue, vermillion, reddish purple) on black, and every token kind
# also differs by attribute (bold/underline, dim, reverse), never by red-versus-green alone.
name = "high-contrast"

[ui]
background = "#000000"
foreground = "#ffffff"
muted = "#bbbbbb"
accent = "#56b4e9"
border = "#ffffff"
border_focused = "#f0e442"
title = "#f0e442"
selection_fg = "#000000"
selection_bg = "#f0e442"
status_fg = "#000000"
status_bg = "#ffffff"
success = "#009e73"
warning = "#e69f00"
error = "#d55e00"

[chart]
axis = "#ffffff"
loss = "#888888"
loss_smoothed = "#e69f00"
learning_rate = "#56b4e9"
grad_norm = "#cc79a7"
runs = ["#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7"]

[roles]
user = "#56b4e9"
assistant = "#e69f00"
system = "#cc79a7"

[tokens]
trained = "#e69f00"
prompt = "#bbbbbb"
system = "#cc79a7"
pad = "#666666"
image = "#56b4e9"
image_boundary = "#f0e442"
truncated = "#d55e00"
"""#,
    ]
}
