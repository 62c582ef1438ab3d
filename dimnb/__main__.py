from dimnb.cli import main

main()
