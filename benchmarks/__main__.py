"""`make bench`: every benchmark, one after the other, each printing its own markdown table."""

from __future__ import annotations

from benchmarks import packaging


def main() -> None:
    print("## Packaging and cold start\n")
    packaging.main()


if __name__ == "__main__":
    main()
