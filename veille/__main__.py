from veille.main import app

app(prog_name="veille")
