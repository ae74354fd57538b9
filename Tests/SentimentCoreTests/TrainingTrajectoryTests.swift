// Optimizer trajectory vs PyTorch (fixtures: tools/fixtures/make_training_fixtures.py): 20 steps
// of AdamW (lr 1e-3, weight decay 0.01 with HF's decay mask), linear schedule with warmup ratio
// 0.1, gradient clipping at 1.0 (it triggers on most steps), dropout off, in HF Trainer's order
// (backward, clip, optimizer step, scheduler step). Every step's loss within 1e-4 of torch's.
import Testing
@testable import SentimentCore

func doubles(_ j: JSON?) throws -> [Double] {
    guard let a = j?.arrayValue else { throw SentimentError.format("expected an array") }
    return try a.map { v in
        guard let x = v.doubleValue else { throw SentimentError.format("expected a number") }
        return x
    }
}

@Suite struct TrainingTrajectoryTests {
    @Test(arguments: ["tiny_distilbert", "tiny_bert_pooler"])
    func adamWTrajectoryMatchesPyTorch(_ key: String) throws {
        let traj = try #require(TrainingFixtures.doc["trajectory"])
        let want = try doubles(traj[key]?["losses"])
        let wantLR = try doubles(traj[key]?["learning_rates"])
        let wantNorm = try doubles(traj[key]?["grad_norms"])
        let batches = try #require(traj["batches"]?.arrayValue).map { try TrainingFixtures.batch($0) }
        let steps = Int(try #require(traj["steps"]?.int64Value))
        try #require(steps == 20 && want.count == steps && batches.count == steps)

        let weights = try TrainingFixtures.model(key)
        let trainer = try GradientStep(weights: weights)
        let grads = try EncoderWeights.zeros(like: weights)
        var hyper = AdamW.Hyperparameters()
        hyper.beta1 = Float(try #require(traj["beta1"]?.doubleValue))
        hyper.beta2 = Float(try #require(traj["beta2"]?.doubleValue))
        hyper.epsilon = Float(try #require(traj["eps"]?.doubleValue))
        hyper.weightDecay = Float(try #require(traj["weight_decay"]?.doubleValue))
        let optimizer = try AdamW(parameters: weights.namedTensors, hyper: hyper)
        let schedule = LearningRateSchedule(
            kind: .linear, baseRate: Float(try #require(traj["lr"]?.doubleValue)),
            warmupSteps: LearningRateSchedule.warmupSteps(ratio: try #require(traj["warmup_ratio"]?.doubleValue), totalSteps: steps),
            totalSteps: steps)
        let maxNorm = Float(try #require(traj["max_grad_norm"]?.doubleValue))
        let gradTensors = grads.namedTensors.map(\.tensor)

        var losses: [Double] = [], worst = 0.0, clipped = 0
        for (k, (batch, labels)) in batches.enumerated() {
            let loss = try trainer.lossAndGradients(batch: batch, labels: labels, gradients: grads, dropoutSeed: nil)
            let norm = clipGradientNorm(gradTensors, maxNorm: maxNorm)
            let lr = schedule.rate(afterSteps: k)
            optimizer.update(gradients: gradTensors, lr: lr)
            losses.append(loss)
            worst = max(worst, abs(loss - want[k]))
            if norm > maxNorm { clipped += 1 }
            #expect(abs(loss - want[k]) <= 1e-4, "\(key) step \(k + 1): loss \(loss) vs torch \(want[k])")
            #expect(abs(Double(lr) - wantLR[k]) <= 1e-9, "\(key) step \(k + 1): lr \(lr) vs torch \(wantLR[k])")
            #expect(abs(Double(norm) - wantNorm[k]) <= 1e-4 * max(1, wantNorm[k]), "\(key) step \(k + 1): grad norm \(norm) vs torch \(wantNorm[k])")
        }
        #expect(clipped >= 10, "clipping should trigger on most steps (it did on \(clipped))")
        print("\(key): 20-step AdamW trajectory, max |loss - torch| \(worst); clipped on \(clipped) steps; "
              + "losses \(losses.first ?? 0) -> \(losses.last ?? 0)")
    }
}
