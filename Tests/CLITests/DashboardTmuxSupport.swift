import Foundation
import XCTest

/// Drives the real binary inside a detached tmux session on a private socket, reading the screen
/// with `capture-pane -p`. Polls with a deadline; never sleeps a fixed time.
final class TmuxSession {
    let socket = "sftdeck-test-\(UUID().uuidString.prefix(8))"
    let name = "t"
    /// A fresh HOME per session, so recent-dataset lists and HF caches of the machine never leak in.
    let home = NSTemporaryDirectory() + "sftdeck-home-\(UUID().uuidString.prefix(8))"
    static var tmuxPath: String? {
        for p in ["/usr/bin/tmux", "/usr/local/bin/tmux", "/opt/homebrew/bin/tmux"] where FileManager.default.isExecutableFile(atPath: p) { return p }
        return nil
    }

    /// Starts `arguments` (the sftdeck binary's) in a width x height window, in `cwd`.
    init(_ arguments: [String], width: Int = 120, height: Int = 40, env: [String: String] = [:], cwd: String? = nil) throws {
        guard Self.tmuxPath != nil else { throw XCTSkip("tmux is not installed (Scripts/setup.sh installs it); the dashboard tmux tests need it") }
        let shellQuoted = ([sftdeckBinary().path] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        var env = env
        if env["HOME"] == nil { env["HOME"] = home }
        if env["HF_HOME"] == nil && env["HF_HUB_CACHE"] == nil { env["HF_HOME"] = home + "/hf" }
        let envPrefix = env.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
        // Keep the pane open after the program exits so its last screen (or error) can be read.
        let cmd = "cd '\(cwd ?? FileManager.default.currentDirectoryPath)' && env \(envPrefix) \(shellQuoted); echo \"[exit $?]\"; sleep 30"
        try tmux(["-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "\(width)", "-y", "\(height)", cmd], capture: false)
    }

    deinit {
        _ = try? tmux(["kill-server"], capture: false)
        try? FileManager.default.removeItem(atPath: home)
    }

    /// Runs tmux with posix_spawn and waitpid, its output going to a temporary file: the command
    /// that starts the server would otherwise hand the server our pipe (no end-of-file ever), and
    /// Foundation's Process can miss the exit of a client whose server daemonised.
    @discardableResult
    func tmux(_ args: [String], capture: Bool = true) throws -> String {
        let outPath = NSTemporaryDirectory() + "tmux-\(UUID().uuidString).out"
        defer { unlink(outPath) }
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, capture ? outPath : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = [Self.tmuxPath!, "-L", socket] + args
        let env = ["PATH=/usr/bin:/bin", "HOME=\(NSTemporaryDirectory())", "TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C.UTF-8"]
        var cArgs = argv.map { strdup($0) } + [nil]
        var cEnv = env.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, Self.tmuxPath!, &actions, nil, &cArgs, &cEnv)
        guard rc == 0 else { throw XCTSkip("cannot start tmux (posix_spawn: \(rc))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return capture ? ((try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "") : ""
    }

    func screen(escapes: Bool = false) -> String {
        (try? tmux(["capture-pane", "-p"] + (escapes ? ["-e"] : []) + ["-t", name])) ?? ""
    }

    func send(_ keys: String...) { _ = try? tmux(["send-keys", "-t", name] + keys) }

    func resize(width: Int, height: Int) { _ = try? tmux(["resize-window", "-t", name, "-x", "\(width)", "-y", "\(height)"]) }

    /// Waits until the screen satisfies `condition`; fails with the last screen after `timeout`.
    @discardableResult
    func waitFor(_ what: String, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line,
                 _ condition: ((String) -> Bool)? = nil) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = screen()
            if condition?(last) ?? last.contains(what) { return last }
            usleep(50_000)
        }
        XCTFail("timed out waiting for \(what); screen:\n\(last)", file: file, line: line)
        return last
    }
}

/// The repository root (for fixtures other test targets own).
func repoRoot() -> URL {
    var u = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { u.deleteLastPathComponent() }
    return u
}
