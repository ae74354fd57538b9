"""Classifies sentences with the sentiment Python package.

    python examples/python/classify.py MODEL_DIR "a charming journey" "a tedious mess"
    echo "a charming journey" | python examples/python/classify.py MODEL_DIR
"""

import argparse
import sys

import sentiment


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="Hugging Face checkpoint folder")
    parser.add_argument("texts", nargs="*", help="sentences (default: one per stdin line)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    texts = args.texts or [line.strip() for line in sys.stdin if line.strip()]
    try:
        with sentiment.Model(args.model_dir) as model:
            for text, result in zip(texts, model.classify(texts, batch_size=args.batch_size)):
                print(f"{result['label']} {result['score']:.4f}  {text}")
    except sentiment.SentimentError as e:
        sys.exit(f"classify.py: {e} ({e.code})")


if __name__ == "__main__":
    main()
