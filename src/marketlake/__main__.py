from marketlake.cli.process import main

main()
