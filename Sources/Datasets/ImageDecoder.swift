// JPEG / PNG bytes -> 8-bit RGB, the way Pillow decodes and converts them.
//
// The C side (Sources/CJPEG) runs libjpeg and libpng under setjmp, checks the header's dimensions against
// `ImageLimits` before allocating any pixel buffer, and returns 1-4 interleaved channels. This file turns
// those into RGB with one of two alpha rules, because the two reference pipelines differ:
//   - `.drop`: PIL `Image.convert("RGB")` (the guide's collate_fn and its `process_vision_info`): alpha and
//     tRNS are discarded, colours kept as stored;
//   - `.compositeOnWhite`: transformers 5.x `convert_to_rgb(PIL image)` (what TRL's collator gets when the
//     processor receives raw dataset images): `Image.alpha_composite` onto opaque white, then RGB.
import CJPEG
import Foundation

/// An 8-bit RGB image, row-major HWC (`pixels.count == width * height * 3`).
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width; self.height = height; self.pixels = pixels
    }
}

/// Bounds checked from the file header before decoding (decompression bombs). Defaults: 16384 per side and
/// Pillow's own hard limit of 2 x `Image.MAX_IMAGE_PIXELS` = 178,956,970 pixels.
public struct ImageLimits: Sendable, Equatable, Codable {
    public var maxWidth: Int
    public var maxHeight: Int
    public var maxPixels: Int
    public init(maxWidth: Int = 16384, maxHeight: Int = 16384, maxPixels: Int = 178_956_970) {
        self.maxWidth = maxWidth; self.maxHeight = maxHeight; self.maxPixels = maxPixels
    }
    public static let `default` = ImageLimits()
}

public enum AlphaHandling: String, Sendable, Codable {
    /// PIL `.convert("RGB")`: alpha discarded.
    case drop
    /// transformers `convert_to_rgb`: composited onto white with `Image.alpha_composite`'s integer arithmetic.
    case compositeOnWhite = "composite-white"
}

public enum ImageFormat: String, Sendable { case jpeg, png }

/// One readable line; the caller prefixes where the image came from (`context`).
public struct ImageError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public enum Kind: String, Sendable { case corrupt, tooLarge = "too-large", unsupported, unknownFormat = "unknown-format", noMemory = "no-memory" }
    public var kind: Kind
    public var message: String
    /// Where the image came from ("row 12, image 1", a file path); set by the caller with `in(_:)`.
    public var context: String?
    public init(_ kind: Kind, _ message: String, context: String? = nil) {
        self.kind = kind; self.message = message; self.context = context
    }
    public func `in`(_ context: String) -> ImageError {
        var e = self
        e.context = self.context.map { "\(context), \($0)" } ?? context
        return e
    }
    public var description: String { context.map { "\($0): \(message)" } ?? message }
    public var errorDescription: String? { description }
}

/// A decoded image before RGB conversion: 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) interleaved 8-bit channels.
public struct DecodedImage: Sendable {
    public var format: ImageFormat
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]
    /// True for channels 2 and 4 (including a PNG tRNS key or palette alpha turned into a channel).
    public var hasAlpha: Bool { channels == 2 || channels == 4 }

    /// RGB conversion, per `alpha`.
    public func rgb(alpha: AlphaHandling = .drop) -> RGBImage {
        let n = width * height
        var out = [UInt8](repeating: 0, count: n * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                switch (channels, alpha) {
                case (3, _):
                    _ = dst.initialize(from: src)
                case (1, _):
                    for i in 0..<n { let v = src[i]; dst[3 * i] = v; dst[3 * i + 1] = v; dst[3 * i + 2] = v }
                case (2, .drop):
                    for i in 0..<n { let v = src[2 * i]; dst[3 * i] = v; dst[3 * i + 1] = v; dst[3 * i + 2] = v }
                case (4, .drop):
                    for i in 0..<n { dst[3 * i] = src[4 * i]; dst[3 * i + 1] = src[4 * i + 1]; dst[3 * i + 2] = src[4 * i + 2] }
                case (2, .compositeOnWhite):
                    for i in 0..<n {
                        let v = src[2 * i], a = src[2 * i + 1]
                        let c = Self.overWhite(v, a)
                        dst[3 * i] = c; dst[3 * i + 1] = c; dst[3 * i + 2] = c
                    }
                case (4, .compositeOnWhite):
                    for i in 0..<n {
                        let a = src[4 * i + 3]
                        dst[3 * i] = Self.overWhite(src[4 * i], a)
                        dst[3 * i + 1] = Self.overWhite(src[4 * i + 1], a)
                        dst[3 * i + 2] = Self.overWhite(src[4 * i + 2], a)
                    }
                default:
                    preconditionFailure("DecodedImage: \(channels) channels")
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Pillow `AlphaComposite.c` for src over an opaque white dst (dst alpha 255), PRECISION_BITS = 7.
    @inline(__always)
    static func overWhite(_ value: UInt8, _ alpha: UInt8) -> UInt8 {
        if alpha == 0 { return 255 }
        let a = UInt32(alpha)
        let blend = 255 * (255 - a)
        let outa255 = a * 255 + blend
        let coef1 = a * 255 * 255 * (1 << 7) / outa255
        let coef2 = 255 * (1 << 7) - coef1
        let tmp = UInt32(value) * coef1 + 255 * coef2 + (0x80 << 7)
        return UInt8(truncatingIfNeeded: (((tmp >> 8) + tmp) >> 8) >> 7)
    }
}

public enum ImageDecoder {
    /// Sniffs the format from the first bytes (never from a file name).
    public static func format(of data: Data) -> ImageFormat? {
        if data.count >= 3, data[data.startIndex] == 0xFF, data[data.startIndex + 1] == 0xD8, data[data.startIndex + 2] == 0xFF { return .jpeg }
        if data.count >= 8, data.prefix(8).elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        return nil
    }

    /// Decodes JPEG or PNG bytes; throws one `ImageError` for anything else or anything broken.
    public static func decode(_ data: Data, limits: ImageLimits = .default) throws -> DecodedImage {
        guard let fmt = format(of: data) else {
            let head = data.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw ImageError(.unknownFormat, "not a JPEG or PNG image (\(data.count) bytes, starts with \(head.isEmpty ? "nothing" : head))")
        }
        var img = sftdeck_image()
        let cLimits = sftdeck_image_limits(max_width: limits.maxWidth, max_height: limits.maxHeight, max_pixels: limits.maxPixels)
        var errorBuffer = [CChar](repeating: 0, count: 256)
        let rc: Int32 = data.withUnsafeBytes { raw -> Int32 in
            let base = raw.bindMemory(to: UInt8.self).baseAddress
            return errorBuffer.withUnsafeMutableBufferPointer { eb in
                switch fmt {
                case .jpeg: return sftdeck_jpeg_decode(base, raw.count, cLimits, &img, eb.baseAddress, eb.count)
                case .png: return sftdeck_png_decode(base, raw.count, cLimits, &img, eb.baseAddress, eb.count)
                }
            }
        }
        defer { sftdeck_image_free(&img) }
        guard rc == Int32(SFTDECK_IMAGE_OK) else {
            let text = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let kind: ImageError.Kind
            switch rc {
            case Int32(SFTDECK_IMAGE_TOO_LARGE): kind = .tooLarge
            case Int32(SFTDECK_IMAGE_UNSUPPORTED): kind = .unsupported
            case Int32(SFTDECK_IMAGE_NO_MEMORY): kind = .noMemory
            default: kind = .corrupt
            }
            let name = fmt == .jpeg ? "JPEG" : "PNG"
            throw ImageError(kind, kind == .corrupt ? "corrupt \(name): \(text)" : text)
        }
        let count = Int(img.width) * Int(img.height) * Int(img.channels)
        let pixels = [UInt8](UnsafeBufferPointer(start: img.pixels, count: count))
        return DecodedImage(format: fmt, width: Int(img.width), height: Int(img.height), channels: Int(img.channels), pixels: pixels)
    }

    /// Decode and convert to RGB in one step.
    public static func decodeRGB(_ data: Data, alpha: AlphaHandling = .drop, limits: ImageLimits = .default) throws -> RGBImage {
        try decode(data, limits: limits).rgb(alpha: alpha)
    }
}
