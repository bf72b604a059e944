import Foundation

/// A key press or terminal event, independent of ncurses' codes (tests synthesise these).
public enum Key: Hashable, Sendable {
    case char(Character)
    case ctrl(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case enter, escape, tab, backTab, backspace, delete
    case function(Int)
    case resize
    case mouse(x: Int, y: Int, button: Int)

    /// How the help overlay names it.
    public var name: String { name(ascii: false) }
    public func name(ascii: Bool) -> String {
        if ascii {
            switch self {
            case .up: return "Up"; case .down: return "Down"; case .left: return "Left"; case .right: return "Right"
            default: break
            }
        }
        switch self {
        case .char(" "): return "Space"
        case .char(let c): return String(c)
        case .ctrl(let c): return "Ctrl-\(c.uppercased())"
        case .up: return "↑"; case .down: return "↓"; case .left: return "←"; case .right: return "→"
        case .pageUp: return "PgUp"; case .pageDown: return "PgDn"; case .home: return "Home"; case .end: return "End"
        case .enter: return "Enter"; case .escape: return "Esc"; case .tab: return "Tab"; case .backTab: return "Shift-Tab"
        case .backspace: return "Backspace"; case .delete: return "Del"
        case .function(let n): return "F\(n)"
        case .resize: return "resize"
        case .mouse: return "mouse"
        }
    }
}

/// A key binding as data: the same table drives dispatch, the help overlay and the status hints
/// (lazygit's `GetKeybindings`).
public struct KeyBinding: Sendable {
    public var keys: [Key]
    public var description: String
    public var showInStatus: Bool
    public init(_ keys: [Key], _ description: String, status: Bool = false) {
        self.keys = keys; self.description = description; self.showInStatus = status
    }
    public var keyNames: String { keyNames(ascii: false) }
    public func keyNames(ascii: Bool) -> String { keys.map { $0.name(ascii: ascii) }.joined(separator: "/") }
}
