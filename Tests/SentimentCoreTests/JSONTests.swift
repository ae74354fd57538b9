// The JSON parser and writer against RFC 8259, with Python's `json` module (3.x) as a second
// witness: every expected value below comes from the RFC's grammar or from what Python gives.
import Testing
@testable import SentimentCore

private func parse(_ text: String) throws -> JSON { try JSON.parse(text) }

private func expectRejected(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let v = try JSON.parse(bytes)
        Issue.record("accepted \(bytes) as \(v.serialized())", sourceLocation: sourceLocation)
    } catch let e as SentimentError {
        #expect(e.status == .invalidArgument, sourceLocation: sourceLocation)
        #expect(e.message.hasPrefix("invalid JSON at line "), "\(e.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}

private func expectRejected(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    expectRejected(Array(text.utf8), sourceLocation: sourceLocation)
}

/// The UTF-8 bytes of a one-string document whose content is `content`.
private func quoted(_ content: [UInt8]) -> [UInt8] { [0x22] + content + [0x22] }

@Suite struct JSONParseTests {
    @Test func roundTrip() throws {
        let text = #"{"a":[1,2.5,-3e-12,true,null],"b":"x\"\n\u00e9\ud83d\ude00","c":{}}"#
        let v = try parse(text)
        #expect(v["a"]?.arrayValue?.count == 5)
        #expect(v["b"]?.stringValue == "x\"\né😀")
        #expect(try parse(v.serialized()) == v)
    }

    @Test func literalsAndStructure() throws {
        #expect(try parse("true") == .bool(true) && parse("false") == .bool(false) && parse("null") == .null)
        #expect(try parse("[]") == .array([]) && parse("{}") == .object([]))
        #expect(try parse(#"{"b":1,"a":[2,{"c":null}]}"#)
            == .object([JSON.Member("b", 1), JSON.Member("a", [2, .object([JSON.Member("c", nil)])])]))
        for bad in ["tru", "True", "nul", "NULL", "[1,]", "[,1]", "[1 2]", "{,}", #"{"a":1,}"#, #"{"a"}"#,
                    #"{"a" 1}"#, "{1:2}", "{'a':1}", #"{"a":1"#, "[", "]", "{", "}", "NaN", "Infinity", "-Infinity",
                    "undefined", "'a'"] {
            expectRejected(bad)
        }
    }

    // RFC 8259 section 2: JSON-text = ws value ws, ws = space, tab, LF, CR.
    @Test func whitespace() throws {
        #expect(try parse(" \t\n\r{ \t\n\r\"a\" \t\n\r: \t\n\r[ 1 , 2 ] \t\n\r} \t\n\r")
            == .object([JSON.Member("a", [1, 2])]))
        // Python: "Expecting value" for form feed, vertical tab, no-break space; U+2028 likewise.
        for other in ["\u{0C}1", "\u{0B}1", "\u{A0}1", "1\u{A0}", "\u{2028}1", "[1,\u{0C}2]"] { expectRejected(other) }
    }

    @Test func emptyInputAndTrailingGarbage() {
        for bad in ["", " ", "\n\t\r ", "1 2", "{} x", "[1]]", "{}}", "nulll", "truex", #""a""b""#, "1.5.2", "0x10", "[1] x"] {
            expectRejected(bad)
        }
        expectRejected([0x31, 0x00])   // a NUL after the value (a C string would end there)
    }

    // RFC 8259 section 8.1: a parser MAY ignore a BOM; like Python ("Unexpected UTF-8 BOM") we reject it.
    @Test func byteOrderMark() throws {
        expectRejected([0xEF, 0xBB, 0xBF] + Array("{}".utf8))
        expectRejected([0xEF, 0xBB, 0xBF])
        #expect(try JSON.parse(quoted([0xEF, 0xBB, 0xBF])) == .string("\u{FEFF}"))   // inside a string it is a character
    }

    @Test func errorsGiveLineAndColumn() {
        do {
            _ = try parse("{\n  \"a\": x\n}")
            Issue.record("accepted")
        } catch let e as SentimentError {
            #expect(e.message.hasPrefix("invalid JSON at line 2, column 8"), "\(e.message)")
        } catch { Issue.record("unexpected \(error)") }
    }
}

@Suite struct JSONStringTests {
    // RFC 8259 section 7: the two-character escapes and \uXXXX (either case of hex digit).
    @Test func escapes() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{08}\u{0C}\n\r\t"))
        #expect(try parse(#""\u0041\u00e9\u00E9\u4e2d\u0000""#) == .string("Aéé中\u{0}"))
        #expect(try parse(#""a\u0020b""#) == .string("a b"))
        for bad in [#""\x41""#, #""\a""#, #""\U0041""#, #""\u12""#, #""\u12G4""#, #""\u""#, #""\"#, #""\'""#, #""\ ""#] {
            expectRejected(bad)
        }
    }

    // A pair decodes to one scalar; an unpaired surrogate (which Python keeps as a lone code
    // point, and no Swift String can hold) becomes U+FFFD, as Python's errors="replace" does.
    @Test func surrogates() throws {
        #expect(try parse(#""\ud83d\ude00""#) == .string("\u{1F600}"))
        #expect(try parse(#""\uD834\uDD1E""#) == .string("\u{1D11E}"))
        #expect(try parse(#""\ud800""#) == .string("\u{FFFD}"))          // lone high, at the end
        #expect(try parse(#""\ud800x""#) == .string("\u{FFFD}x"))        // lone high, then a character
        #expect(try parse(#""\ud800\u0041""#) == .string("\u{FFFD}A"))   // high, then a non-surrogate escape
        #expect(try parse(#""\ud800\ud800""#) == .string("\u{FFFD}\u{FFFD}"))
        #expect(try parse(#""\udc00""#) == .string("\u{FFFD}"))          // lone low
        #expect(try parse(#""\ude00\ud83d""#) == .string("\u{FFFD}\u{FFFD}"))   // reversed pair
        expectRejected(#""\ud800\u12""#)                                  // a truncated second escape
    }

    @Test func rawUTF8() throws {
        #expect(try JSON.parse(quoted([0xC3, 0xA9, 0xE4, 0xB8, 0xAD, 0xF0, 0x9F, 0x98, 0x80])) == .string("é中😀"))
        #expect(try JSON.parse(quoted([0xF4, 0x8F, 0xBF, 0xBF])) == .string("\u{10FFFF}"))
    }

    // RFC 8259 section 8.1: JSON text is UTF-8; these byte sequences are not.
    @Test(arguments: [
        [0x80], [0xBF], [0xC3], [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
        [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xFE], [0xF0, 0x9F, 0x98], [0xE4, 0xB8],
    ] as [[UInt8]])
    func invalidUTF8(_ bad: [UInt8]) {
        expectRejected(quoted(Array("good ".utf8) + bad + Array(" movie".utf8)))
        expectRejected(Array(#"{""#.utf8) + bad + Array(#"":1}"#.utf8))   // in a key
        expectRejected(bad)                                                 // outside any string
    }

    // RFC 8259 section 7: U+0000 to U+001F must be escaped; DEL (U+007F) need not be (Python agrees).
    @Test func controlCharacters() throws {
        for c in UInt8(0)..<0x20 { expectRejected(quoted([0x61, c, 0x62])) }
        #expect(try JSON.parse(quoted([0x7F])) == .string("\u{7F}"))
    }
}

@Suite struct JSONNumberTests {
    @Test func integers() throws {
        #expect(try parse("0") == .int(0) && parse("-1") == .int(-1) && parse("123456789") == .int(123_456_789))
        #expect(try parse("[0,-0,7]") == [0, 0, 7])
        // -0 is an integer zero (Python: 0); -0.0 keeps its sign (Python: -0.0).
        #expect(try parse("-0") == .int(0))
        guard case .double(let z) = try parse("-0.0") else { Issue.record("-0.0 is not a double"); return }
        #expect(z == 0 && z.sign == .minus)
    }

    @Test func int64Edges() throws {
        #expect(try parse("9223372036854775807") == .int(Int64.max))
        #expect(try parse("-9223372036854775808") == .int(Int64.min))
        // Past Int64 a literal is a double (Python keeps an exact int; RFC 8259 section 6 allows the limit).
        #expect(try parse("9223372036854775808") == .double(0x1p63))
        #expect(try parse("-9223372036854775809") == .double(-0x1p63))
        #expect(try parse("9223372036854775808").int64Value == nil)
        #expect(try parse("3.0").int64Value == 3 && parse("3.5").int64Value == nil && parse("1e19").int64Value == nil)
    }

    // Python's float() of each text, as float.hex() prints it.
    @Test func fractionsAndExponents() throws {
        let cases: [(String, Double)] = [
            ("1e2", 100), ("1E+2", 100), ("1e-2", 0x1.47ae147ae147bp-7), ("2.5e3", 2500), ("0e1", 0), ("0.5", 0.5),
            ("-1.5e-7", -0x1.421f5f40d8376p-23), ("0.1", 0x1.999999999999ap-4),
            ("0.30000000000000004", 0x1.3333333333334p-2), ("123456789.12345679", 0x1.d6f34547e6b75p+26),
            ("1.7976931348623157e308", 0x1.fffffffffffffp+1023), ("2.2250738585072014e-308", 0x1p-1022),
            ("5e-324", 0x0.0000000000001p-1022), ("1e-400", 0),   // underflow to 0, as in Python
        ]
        for (text, value) in cases {
            #expect(try parse(text) == .double(value), "\(text)")
        }
    }

    @Test func rejected() {
        // Out of the double range (Python would give inf; RFC 8259 section 6 allows rejecting).
        for huge in ["1e400", "-1e400", "1e99999999999999999999", "[1e309]"] { expectRejected(huge) }
        // Not in the grammar: number = [ "-" ] int [ frac ] [ exp ], int = "0" / nonzero digits.
        for bad in ["01", "-01", "00", "1.", "-1.", ".5", "-.5", "-", "+1", "1e", "1e+", "1E-", "--1", "1.e3", "- 1",
                    "1_000", "١"] {
            expectRejected(bad)
        }
    }

    // Python's repr of these doubles; serialize then parse must give back the same bits.
    @Test(arguments: [
        0.1, 1.0 / 3, 0x0.0000000000001p-1022, 0x1.fffffffffffffp+1023, 0x1p-1022, 0x1.d6f34547e6b75p+26,
        -0x1.421f5f40d8376p-23, 0x1.3333333333334p-2, 1e16, 1e15, 100, 1.5e300, 0x1p53, 4.35, 1e-5, 1e-4, -0.0,
    ] as [Double])
    func doublesRoundTrip(_ x: Double) throws {
        let text = JSON.double(x).serialized()
        guard case .double(let back)? = try? parse(text) else { Issue.record("\(text) is not a double"); return }
        #expect(back.bitPattern == x.bitPattern, "\(x) -> \(text) -> \(back)")
        #expect(Double(text)?.bitPattern == x.bitPattern, "\(text)")
    }

    @Test func writing() {
        #expect(JSON.double(.nan).serialized() == "null" && JSON.double(-.infinity).serialized() == "null")
        #expect(JSON(Float(0.99)).serialized() == "0.99")   // a Float's own shortest digits
        #expect(JSON(Int.min).serialized() == "-9223372036854775808")
    }
}

@Suite struct JSONDocumentTests {
    // Duplicate keys are rejected (RFC 8259 section 4 says names SHOULD be unique; Python keeps
    // the last). Keys compare as Swift strings: canonically equivalent spellings are one key.
    @Test func duplicateKeys() throws {
        for bad in [#"{"a":1,"a":2}"#, #"{"a":1,"b":2,"a":1}"#, #"{"x":{"a":1,"a":1}}"#, #"{"a":1,"\u0061":2}"#,
                    "{\"\u{E9}\":1,\"e\u{301}\":2}"] {
            expectRejected(bad)
        }
        #expect(try parse(#"[{"a":1},{"a":2}]"#) == [.object([JSON.Member("a", 1)]), .object([JSON.Member("a", 2)])])
        #expect(try parse(#"{"a":1,"A":2,"a ":3}"#).objectMembers?.count == 3)
    }

    // JSON.maxDepth levels of values, the top-level value being level 1.
    @Test func nestingDepth() throws {
        let n = JSON.maxDepth
        let arrays = { (k: Int, inner: String) in String(repeating: "[", count: k) + inner + String(repeating: "]", count: k) }
        #expect(throws: Never.self) { try parse(arrays(n, "")) }
        #expect(throws: Never.self) { try parse(arrays(n - 1, "1")) }
        expectRejected(arrays(n + 1, ""))
        expectRejected(arrays(n, "1"))
        expectRejected(arrays(10_000, ""))
        let objects = { (k: Int) in String(repeating: #"{"a":"#, count: k - 1) + "{}" + String(repeating: "}", count: k - 1) }
        #expect(throws: Never.self) { try parse(objects(n)) }
        expectRejected(objects(n + 1))
    }

    // Python: json.dumps(..., indent=2) and separators=(",", ":") give these texts.
    @Test func layout() throws {
        let v = JSON.object([JSON.Member("a", [1, 2]), JSON.Member("b", .object([])), JSON.Member("c", [])])
        #expect(v.serialized() == #"{"a":[1,2],"b":{},"c":[]}"#)
        #expect(v.serialized(indent: 2) == "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": []\n}")
    }

    // RFC 8259 section 7: quotation mark, reverse solidus and U+0000-U+001F must be escaped; any
    // other character may be written as itself. \b and \f are written in the \u form.
    @Test func stringEscaping() throws {
        #expect(JSON.string("\"\\/\n\r\t").serialized() == #""\"\\/\n\r\t""#)
        #expect(JSON.string("\u{0}\u{1}\u{8}\u{C}\u{1F}\u{7F}").serialized() == #""\u0000\u0001\u0008\u000c\u001f\u007f""#)
        #expect(JSON.string("é中😀\u{2028}\u{FFFD}").serialized() == "\"é中😀\u{2028}\u{FFFD}\"")
        #expect(JSON.object([JSON.Member("k\"\n", 1)]).serialized() == #"{"k\"\n":1}"#)
        // Every ASCII character and a few others survive a round trip.
        let all = String(String.UnicodeScalarView((UInt32(0)..<0x80).compactMap { Unicode.Scalar($0) })) + "é\u{10FFFF}e\u{301}"
        let text = JSON.string(all).serialized()
        #expect(!text.utf8.contains { $0 < 0x20 })
        #expect(try parse(text) == .string(all))
    }
}
