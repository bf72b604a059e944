import Foundation

/// Finds a Hugging Face Hub dataset in the local cache (huggingface_hub's layout:
/// `<cache>/datasets--OWNER--NAME/{refs/main, snapshots/<revision>/...}`). SFTDeck never downloads;
/// when the dataset is missing, the error says which command would fetch it.
public enum HubCache {
    public struct Resolved: Sendable, Equatable {
        public var repoID: String
        public var revision: String
        public var snapshot: URL
    }

    public struct NotFound: Error, CustomStringConvertible, LocalizedError, Sendable {
        public var repoID: String
        public var searched: [String]
        public var detail: String
        public var description: String {
            "dataset \(repoID) \(detail) (looked in \(searched.joined(separator: ", "))); download it with: "
                + "huggingface-cli download --repo-type dataset \(repoID)"
        }
        public var errorDescription: String? { description }
    }

    /// True for `OWNER/NAME` (optionally `@revision`) that is not an existing local path.
    public static func looksLikeRepoID(_ spec: String) -> Bool {
        let base = spec.split(separator: "@", maxSplits: 1).first.map(String.init) ?? spec
        let parts = base.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !spec.hasPrefix("."), !spec.hasPrefix("~") else { return false }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        return parts.allSatisfy { $0.unicodeScalars.allSatisfy { allowed.contains($0) } }
    }

    /// Cache roots in huggingface_hub's order of precedence.
    public static func cacheRoots(environment env: [String: String] = ProcessInfo.processInfo.environment) -> [URL] {
        if let c = env["HF_HUB_CACHE"], !c.isEmpty { return [URL(fileURLWithPath: c)] }
        if let c = env["HUGGINGFACE_HUB_CACHE"], !c.isEmpty { return [URL(fileURLWithPath: c)] }
        if let h = env["HF_HOME"], !h.isEmpty { return [URL(fileURLWithPath: h).appendingPathComponent("hub")] }
        let home = env["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        let xdg = env["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) } ?? home.appendingPathComponent(".cache")
        return [xdg.appendingPathComponent("huggingface/hub")]
    }

    /// Resolves `OWNER/NAME[@revision]` to a snapshot folder: the requested revision, else `refs/main`,
    /// else the only (or newest) snapshot.
    public static func resolve(_ spec: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Resolved {
        let pieces = spec.split(separator: "@", maxSplits: 1).map(String.init)
        let repoID = pieces[0]
        let wanted = pieces.count > 1 ? pieces[1] : nil
        let folderName = "datasets--" + repoID.replacingOccurrences(of: "/", with: "--")
        let roots = cacheRoots(environment: environment)
        let fm = FileManager.default
        for root in roots {
            let repo = root.appendingPathComponent(folderName)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: repo.path, isDirectory: &isDir), isDir.boolValue else { continue }
            let snapshots = repo.appendingPathComponent("snapshots")
            let available = ((try? fm.contentsOfDirectory(atPath: snapshots.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            func refTarget(_ name: String) -> String? {
                (try? String(contentsOf: repo.appendingPathComponent("refs").appendingPathComponent(name), encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            var revision: String?
            if let wanted {
                revision = refTarget(wanted) ?? (available.contains(wanted) ? wanted : available.first { $0.hasPrefix(wanted) })
                guard revision != nil else {
                    throw NotFound(repoID: repoID, searched: [repo.path], detail: "has no revision '\(wanted)' in the cache (snapshots: \(available.joined(separator: ", ")))")
                }
            } else if let main = refTarget("main"), available.contains(main) {
                revision = main
            } else if available.count == 1 {
                revision = available[0]
            } else if !available.isEmpty {
                revision = available.max { a, b in
                    let da = (try? fm.attributesOfItem(atPath: snapshots.appendingPathComponent(a).path)[.modificationDate] as? Date) ?? .distantPast
                    let db = (try? fm.attributesOfItem(atPath: snapshots.appendingPathComponent(b).path)[.modificationDate] as? Date) ?? .distantPast
                    return da < db
                }
            }
            guard let revision else {
                throw NotFound(repoID: repoID, searched: [repo.path], detail: "has no downloaded snapshot")
            }
            return Resolved(repoID: repoID, revision: revision, snapshot: snapshots.appendingPathComponent(revision))
        }
        throw NotFound(repoID: repoID, searched: roots.map { $0.appendingPathComponent(folderName).path }, detail: "is not in the Hugging Face cache")
    }
}
