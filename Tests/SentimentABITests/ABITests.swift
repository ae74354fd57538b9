import Testing
@Test func abiVersion() { }
