from repro.bench.cli import main

main()
