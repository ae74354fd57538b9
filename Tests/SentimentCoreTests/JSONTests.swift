import Testing
@testable import SentimentCore

@Suite struct JSONTests {
    @Test func roundTrip() throws {
        let text = #"{"a":[1,2.5,-3e-12,true,null],"b":"x\"\n\u00e9\ud83d\ude00","c":{}}"#
        let v = try JSON.parse(text)
        #expect(v["a"]?.arrayValue?.count == 5)
        #expect(v["b"]?.stringValue == "x\"\né😀")
        #expect(try JSON.parse(v.serialized()) == v)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":1,\"a\":2}", "NaN", "01", "\"\u{01}\"", "[1] x", "{\"a\" 1}", "1e999"])
    func rejects(_ text: String) {
        #expect(throws: SentimentError.self) { try JSON.parse(text) }
    }

    @Test func depthLimit() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: SentimentError.self) { try JSON.parse(deep) }
    }

    @Test func invalidUTF8() {
        #expect(throws: SentimentError.self) { try JSON.parse([0x22, 0xFF, 0x22]) }
    }
}
