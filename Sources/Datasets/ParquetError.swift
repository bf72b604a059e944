import Foundation

/// A parquet file that cannot be read: one line naming the file and the problem.
public struct ParquetError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var file: String
    public var problem: String
    public init(file: String, _ problem: String) { self.file = file; self.problem = problem }
    public var description: String { "\(file): \(problem)" }
    public var errorDescription: String? { description }
}

/// Errors raised while decoding, before the file name is attached.
struct ParquetDecodeError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
