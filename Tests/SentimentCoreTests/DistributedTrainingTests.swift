// Data-parallel training (Collective.swift) on the tiny model of TrainerTests: ranks on threads
// of this process over an in-memory allreduce, against one process with the same global batch.
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import SentimentCore

/// An allreduce between threads of this process. Each rank publishes its buffer, waits for the
/// others, sums all of them in rank order (so every rank gets the same bits), waits until all
/// have read, then writes its sum. `failCall` k makes every rank's k-th call (0-based) fail, as
/// a collective does when a peer dies.
final class ThreadAllreduce: @unchecked Sendable {
    let ranks: Int
    let failCall: Int?
    private let buffers: UnsafeMutablePointer<UnsafeMutableBufferPointer<Float>>
    private let barrier = UnsafeMutablePointer<pthread_barrier_t>.allocate(capacity: 1)
    private var calls: [Int]
    /// Set when two ranks passed buffers of different sizes to the same call.
    private(set) var mismatch = false

    init(ranks: Int, failCall: Int? = nil) {
        self.ranks = ranks
        self.failCall = failCall
        buffers = .allocate(capacity: ranks)
        buffers.initialize(repeating: UnsafeMutableBufferPointer(start: nil, count: 0), count: ranks)
        calls = Array(repeating: 0, count: ranks)
        pthread_barrier_init(barrier, nil, UInt32(ranks))
    }

    deinit {
        pthread_barrier_destroy(barrier)
        barrier.deallocate()
        buffers.deallocate()
    }

    func collective(_ rank: Int) throws -> Collective {
        try Collective(rank: rank, worldSize: ranks) { [self] in reduce(rank, $0) }
    }

    /// Number of calls rank `rank` made.
    func callCount(_ rank: Int) -> Int { calls[rank] }

    private func reduce(_ rank: Int, _ buffer: UnsafeMutableBufferPointer<Float>) -> Bool {
        defer { calls[rank] += 1 }
        if calls[rank] == failCall { return false }
        buffers[rank] = buffer
        pthread_barrier_wait(barrier)
        var sum = [Float](repeating: 0, count: buffer.count)
        for r in 0..<ranks {
            guard buffers[r].count == buffer.count else {
                mismatch = true
                continue
            }
            for i in 0..<buffer.count { sum[i] += buffers[r][i] }
        }
        pthread_barrier_wait(barrier)
        for i in 0..<buffer.count { buffer[i] = sum[i] }
        return true
    }
}

/// One rank's run and its outcome.
final class RankThread: @unchecked Sendable {
    let rank: Int
    let body: (Int) throws -> TrainingResult
    var outcome: Result<TrainingResult, Error>?
    init(_ rank: Int, _ body: @escaping (Int) throws -> TrainingResult) { self.rank = rank; self.body = body }
}

/// Runs `body(rank)` on one thread per rank and returns each rank's outcome.
func onThreads(_ ranks: Int, _ body: @escaping (Int) throws -> TrainingResult) -> [Result<TrainingResult, Error>] {
    let slots = (0..<ranks).map { RankThread($0, body) }
    var threads: [pthread_t] = []
    for slot in slots {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setstacksize(&attributes, 8 << 20)
        var th = pthread_t()
        pthread_create(&th, &attributes, { raw in
            let s = Unmanaged<RankThread>.fromOpaque(raw!).takeUnretainedValue()
            s.outcome = Result { try s.body(s.rank) }
            return nil
        }, Unmanaged.passUnretained(slot).toOpaque())
        pthread_attr_destroy(&attributes)
        threads.append(th)
    }
    for th in threads { pthread_join(th, nil) }
    return slots.map { $0.outcome! }
}

@Suite(.serialized) struct DistributedTrainingTests {
    @Test func shardsCutTheBatchThenSplitEachShard() {
        let five = Array(repeating: 5, count: 10)
        #expect(MicroBatches.shards(lengths: five, ranks: 1, parts: 4) == [MicroBatches.split(lengths: five, parts: 4)])
        #expect(MicroBatches.shards(lengths: five, ranks: 2, parts: 1) == [[0..<5], [5..<10]])
        #expect(MicroBatches.shards(lengths: five, ranks: 2, parts: 2) == [[0..<3, 3..<5], [5..<8, 8..<10]])
        #expect(MicroBatches.shards(lengths: [3, 3, 3, 9, 1], ranks: 2, parts: 1, maxTokens: 6)
                == [[0..<2, 2..<3], [3..<4, 4..<5]])
        // A last batch smaller than the world: the spare ranks get nothing to run.
        #expect(MicroBatches.shards(lengths: [4], ranks: 3, parts: 1) == [[0..<1], [], []])
    }

    /// max |a - b| / max |b| over the tensors of two checkpoints, and max |a - b| over the key
    /// biases: their gradient is zero in exact arithmetic (softmax ignores a constant added to
    /// every key), so what they get is rounding noise, which Adam scales to steps of about the
    /// learning rate whatever the order of the sums.
    func difference(_ a: String, _ b: String) throws -> (relative: Double, keyBias: Double) {
        let x = try Checkpoint.load(directory: a).weights.namedTensors
        let y = try Checkpoint.load(directory: b).weights.namedTensors
        #expect(x.map(\.name) == y.map(\.name))
        var relative = 0.0, keyBias = 0.0
        for (p, q) in zip(x, y) {
            let (diff, ref) = maxAbsDiff(p.tensor, q.tensor)
            if p.name.hasSuffix("key.bias") {
                keyBias = Swift.max(keyBias, diff)
            } else {
                relative = Swift.max(relative, diff / Swift.max(ref, 1e-12))
            }
        }
        return (relative, keyBias)
    }

    @Test func twoRanksFollowOneProcessWithTheSameGlobalBatch() throws {
        let setup = try TinyTrainingSetup()
        var c = setup.config(.last)   // dropout on, evaluation every epoch, 20 steps of 16
        #expect(c.dropout)
        c.outputDirectory = setup.tmp.sub("single")
        c.gradientAccumulationSteps = 2
        let single = try Trainer.run(config: c)

        c.gradientAccumulationSteps = 1
        c.outputDirectory = setup.tmp.sub("ranks")
        let allreduce = ThreadAllreduce(ranks: 2)
        final class Paths: @unchecked Sendable { var list: [String] = [] }
        let saved = [Paths(), Paths()]   // one per rank: the threads never share one
        let results = onThreads(2) { rank in
            try Trainer.run(config: c, collective: try allreduce.collective(rank)) { event in
                if case let .saved(path) = event { saved[rank].list.append(path) }
                return true
            }
        }
        let ranks = try results.map { try $0.get() }
        #expect(!allreduce.mismatch)
        #expect(allreduce.callCount(0) == allreduce.callCount(1))
        for r in ranks {
            #expect(r.steps == 20 && r.stepLosses.count == 20)
            #expect(zip(r.stepLosses, single.stepLosses).allSatisfy { abs($0 - $1) <= 1e-5 * abs($1) },
                    "\(r.stepLosses) vs \(single.stepLosses)")
            #expect(r.epochs.map(\.evalAccuracy) == single.epochs.map(\.evalAccuracy))
            #expect(zip(r.epochs, single.epochs).allSatisfy { abs($0.evalLoss! - $1.evalLoss!) <= 1e-5 * $1.evalLoss! })
            #expect(r.trainTokens == single.trainTokens && r.bestStep == single.bestStep)
        }
        // Every rank reports the same figures; only rank 0 saves.
        #expect(ranks[0].stepLosses == ranks[1].stepLosses && ranks[0].epochs.map(\.evalLoss) == ranks[1].epochs.map(\.evalLoss))
        #expect(saved[0].list == [setup.tmp.sub("ranks")] && saved[1].list.isEmpty)
        let d = try difference(setup.tmp.sub("ranks"), setup.tmp.sub("single"))
        #expect(d.relative <= 1e-5, "final weights differ by \(d.relative) relative")
        #expect(d.keyBias <= 20 * c.learningRate, "key biases differ by \(d.keyBias)")
    }

    @Test func aCancelOnOneRankStopsBothAtTheSameStep() throws {
        let setup = try TinyTrainingSetup()
        let c = setup.config(.no)
        let allreduce = ThreadAllreduce(ranks: 2)
        let results = onThreads(2) { rank in
            try Trainer.run(config: c, collective: try allreduce.collective(rank)) { event in
                if rank == 1, case let .step(_, step, _, _, _, _) = event, step == 3 { return false }
                return true
            }
        }
        for result in results {
            let r = try result.get()
            #expect(r.cancelled && r.stopReason == .cancelled && r.steps == 3)
        }
    }

    @Test func aRankThatFailsToStartStopsTheOthers() throws {
        let setup = try TinyTrainingSetup()
        var c = setup.config(.no)
        c.evalFile = setup.tmp.sub("missing.tsv")   // only rank 0 reads it
        let allreduce = ThreadAllreduce(ranks: 2)
        let results = onThreads(2) { rank in try Trainer.run(config: c, collective: try allreduce.collective(rank)) }
        let errors = results.map { result -> SentimentError? in
            guard case .failure(let e) = result else { return nil }
            return e as? SentimentError
        }
        #expect(errors[0]?.field == "eval_file")
        #expect(errors[1]?.field == "allreduce" && errors[1]?.message.contains("the set-up of the run") == true,
                "\(String(describing: errors[1]))")
    }

    @Test func aFailedAllreduceIsANamedError() throws {
        let setup = try TinyTrainingSetup()
        let c = setup.config(.no)
        let allreduce = ThreadAllreduce(ranks: 2, failCall: 4)
        let results = onThreads(2) { rank in try Trainer.run(config: c, collective: try allreduce.collective(rank)) }
        for (rank, result) in results.enumerated() {
            guard case .failure(let e as SentimentError) = result else {
                Issue.record("rank \(rank) did not fail")
                continue
            }
            #expect(e.field == "allreduce" && e.message.contains("rank \(rank) of 2"), "\(e.message)")
        }
    }

    @Test func rankAndWorldSizeAreChecked() {
        #expect(throws: SentimentError.self) { try Collective(rank: 2, worldSize: 2) { _ in true } }
        #expect(throws: SentimentError.self) { try Collective(rank: 0, worldSize: 0) { _ in true } }
        #expect(throws: SentimentError.self) { try Collective(rank: -1, worldSize: 2) { _ in true } }
    }
}
