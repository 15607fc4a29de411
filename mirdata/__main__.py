from mirdata.cli import main

main()
