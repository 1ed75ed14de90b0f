from veille.cli import app

app(prog_name="veille")
