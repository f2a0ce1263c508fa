"""`make bench`: every benchmark, one after the other, each printing its own markdown table."""

from __future__ import annotations

from benchmarks import demo, onboarding_cost, packaging, payables_sync, payments, webhook_ingress


def main() -> None:
    print("## Packaging and cold start\n")
    packaging.main()
    print("\n## Webhook ingress\n")
    webhook_ingress.main()
    print("\n## One onboarding: Codat calls, transitions, Lambda invocations\n")
    onboarding_cost.main()
    print("\n## Paying a bill\n")
    payments.main([])
    print("\n## Syncing a company's payables (20,000 bills: about 5 minutes)\n")
    payables_sync.main([])
    print("\n## make demo\n")
    demo.main([])


if __name__ == "__main__":
    main()
