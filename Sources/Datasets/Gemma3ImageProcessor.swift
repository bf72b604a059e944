// Gemma 3's image processor, as transformers 5.24 runs it with the PIL backend (`Gemma3ImageProcessorPil`;
// 5.24 would default to the torchvision backend when torchvision is installed, which is not bit-identical to
// PIL: the reference fixtures ask for the PIL backend explicitly, and that is what the guide's stack ran).
//
// Per image: RGB (already, see ImageDecoder) -> Pillow resize to size.height x size.width (aspect ratio NOT
// kept) -> rescale float32(float64(u8) * rescale_factor) -> normalize (x - mean) / std in float32 -> CHW.
import Foundation

/// `preprocessor_config.json` (the keys the Gemma 3 processor reads). Nulls resolve to the processor-level
/// defaults of `Gemma3Processor.images_kwargs` (do_convert_rgb = true, do_pan_and_scan = false).
public struct Gemma3ImageProcessorConfig: Codable, Sendable, Equatable {
    public struct Size: Codable, Sendable, Equatable {
        public var height: Int
        public var width: Int
        public init(height: Int, width: Int) { self.height = height; self.width = width }
    }
    public var imageProcessorType: String?
    public var doResize: Bool
    public var size: Size
    public var resample: Int
    public var doRescale: Bool
    public var rescaleFactor: Double
    public var doNormalize: Bool
    public var imageMean: [Double]
    public var imageStd: [Double]
    public var doConvertRgb: Bool
    public var doPanAndScan: Bool
    /// Image soft tokens per image (N in the text expansion); from this file or `processor_config.json`.
    public var imageSeqLength: Int?

    enum CodingKeys: String, CodingKey {
        case imageProcessorType = "image_processor_type", doResize = "do_resize", size, resample
        case doRescale = "do_rescale", rescaleFactor = "rescale_factor", doNormalize = "do_normalize"
        case imageMean = "image_mean", imageStd = "image_std", doConvertRgb = "do_convert_rgb"
        case doPanAndScan = "do_pan_and_scan", imageSeqLength = "image_seq_length"
    }

    /// The gemma-3-4b-it values.
    public init(size: Size = Size(height: 896, width: 896), imageSeqLength: Int? = 256) {
        imageProcessorType = "Gemma3ImageProcessor"; doResize = true; self.size = size; resample = 2
        doRescale = true; rescaleFactor = 0.00392156862745098; doNormalize = true
        imageMean = [0.5, 0.5, 0.5]; imageStd = [0.5, 0.5, 0.5]; doConvertRgb = true; doPanAndScan = false
        self.imageSeqLength = imageSeqLength
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Class defaults of Gemma3ImageProcessorPil where a key is absent.
        imageProcessorType = try c.decodeIfPresent(String.self, forKey: .imageProcessorType)
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? true
        size = try c.decodeIfPresent(Size.self, forKey: .size) ?? Size(height: 224, width: 224)
        resample = try c.decodeIfPresent(Int.self, forKey: .resample) ?? 2
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? true
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? (1.0 / 255.0)
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? true
        imageMean = try c.decodeIfPresent([Double].self, forKey: .imageMean) ?? [0.5, 0.5, 0.5]
        imageStd = try c.decodeIfPresent([Double].self, forKey: .imageStd) ?? [0.5, 0.5, 0.5]
        doConvertRgb = try c.decodeIfPresent(Bool.self, forKey: .doConvertRgb) ?? true
        doPanAndScan = try c.decodeIfPresent(Bool.self, forKey: .doPanAndScan) ?? false
        imageSeqLength = try c.decodeIfPresent(Int.self, forKey: .imageSeqLength)
    }

    /// Reads `preprocessor_config.json` from a model folder (and `processor_config.json`'s image_seq_length).
    public static func load(modelDirectory: URL) throws -> Gemma3ImageProcessorConfig {
        let url = modelDirectory.appendingPathComponent("preprocessor_config.json")
        guard let data = try? Data(contentsOf: url) else {
            throw ProcessorError("\(url.path): cannot read preprocessor_config.json")
        }
        var config: Gemma3ImageProcessorConfig
        do { config = try JSONDecoder().decode(Gemma3ImageProcessorConfig.self, from: data) } catch {
            throw ProcessorError("\(url.path): \(error)")
        }
        if config.imageSeqLength == nil {
            let p = modelDirectory.appendingPathComponent("processor_config.json")
            if let d = try? Data(contentsOf: p), let obj = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
               let n = obj["image_seq_length"] as? Int { config.imageSeqLength = n }
        }
        return config
    }
}

/// One readable line for processor/collator problems.
public struct ProcessorError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

public struct Gemma3ImageProcessor: Sendable {
    public let config: Gemma3ImageProcessorConfig
    public let filter: PillowFilter
    /// u8 value -> final float per channel (rescale then normalize, each in the reference's precision).
    private let lookup: [[Float]]

    public init(config: Gemma3ImageProcessorConfig) throws {
        guard !config.doPanAndScan else { throw ProcessorError("preprocessor_config: do_pan_and_scan=true is not supported") }
        guard let f = PillowFilter(rawValue: config.resample) else {
            throw ProcessorError("preprocessor_config: resample=\(config.resample) is not supported (1-5; NEAREST=0 is not ported)")
        }
        guard config.imageMean.count == 3, config.imageStd.count == 3 else {
            throw ProcessorError("preprocessor_config: image_mean and image_std need 3 values")
        }
        guard config.size.height > 0, config.size.width > 0 else { throw ProcessorError("preprocessor_config: size must be positive") }
        self.config = config
        self.filter = f
        var lut = [[Float]]()
        for c in 0..<3 {
            let mean = Float(config.imageMean[c]), std = Float(config.imageStd[c])
            lut.append((0..<256).map { v -> Float in
                // rescale: image.astype(float64) * scale, then .astype(float32)
                var x = config.doRescale ? Float(Double(v) * config.rescaleFactor) : Float(v)
                // normalize: float32 (x - mean) / std
                if config.doNormalize { x = (x - mean) / std }
                return x
            })
        }
        lookup = lut
    }

    public var outputHeight: Int { config.doResize ? config.size.height : 0 }
    public var outputWidth: Int { config.doResize ? config.size.width : 0 }

    /// Resized uint8 image (before rescale/normalize).
    public func resized(_ image: RGBImage) -> RGBImage {
        guard config.doResize else { return image }
        return PillowResize.resize(image, width: config.size.width, height: config.size.height, filter: filter)
    }

    /// Pixel values of one image, CHW float32 [3, H, W], appended to `out`.
    public func process(_ image: RGBImage, into out: inout [Float]) {
        let r = resized(image)
        let plane = r.width * r.height
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: 3 * plane))
        r.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                lookup[0].withUnsafeBufferPointer { l0 in
                    lookup[1].withUnsafeBufferPointer { l1 in
                        lookup[2].withUnsafeBufferPointer { l2 in
                            let s = src.baseAddress!
                            let d0 = dst.baseAddress! + start, d1 = d0 + plane, d2 = d1 + plane
                            let t0 = l0.baseAddress!, t1 = l1.baseAddress!, t2 = l2.baseAddress!
                            for i in 0..<plane {
                                d0[i] = t0[Int(s[3 * i])]
                                d1[i] = t1[Int(s[3 * i + 1])]
                                d2[i] = t2[Int(s[3 * i + 2])]
                            }
                        }
                    }
                }
            }
        }
    }

    public func process(_ image: RGBImage) -> [Float] {
        var out = [Float]()
        out.reserveCapacity(3 * max(outputHeight, image.height) * max(outputWidth, image.width))
        process(image, into: &out)
        return out
    }
}
