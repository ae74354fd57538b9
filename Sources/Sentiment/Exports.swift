import SentimentCore

@_cdecl("sentiment_abi_version")
public func sentiment_abi_version() -> Int32 { 1 }
